"""Distribution metrics for generated images: FID, KID and MiFID computed by torchmetrics on the
features of the FID Inception-v3 (written here in plain torch; weights read from a file, never
downloaded) or of any feature network. See docs/metrics.md."""
from prism.fid.inception import (WEIGHTS_ENV, WEIGHTS_FILENAME, WEIGHTS_URL, FIDInceptionV3,
                                 default_weights_path, find_weights, load_fid_inception)
from prism.fid.metrics import (METRICS, MIFID_COSINE_THRESHOLD, FeatureSet, compute_fid, compute_kid,
                               compute_mifid, distribution_metrics, extract_features, real_feature_set,
                               stats_cache_dir)

__all__ = [
    "WEIGHTS_ENV", "WEIGHTS_FILENAME", "WEIGHTS_URL", "FIDInceptionV3", "default_weights_path", "find_weights",
    "load_fid_inception", "METRICS", "MIFID_COSINE_THRESHOLD", "FeatureSet", "compute_fid", "compute_kid",
    "compute_mifid", "distribution_metrics", "extract_features", "real_feature_set", "stats_cache_dir",
]
