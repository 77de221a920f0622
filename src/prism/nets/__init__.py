"""Networks, registered by name in prism.registry.NETWORKS (import side effect)."""
from prism.nets import patchgan, unet  # noqa: F401
try:  # written in parallel; optional until it lands
    from prism.nets import resnet_unet  # noqa: F401
except ImportError:  # pragma: no cover
    pass
