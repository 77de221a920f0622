"""Networks, registered by name in prism.registry.NETWORKS (import side effect)."""
from prism.nets import classifier, efficientnet_lite, patchgan, resnet_unet, unet  # noqa: F401
from prism.nets import binned_chroma  # noqa: F401,E402
from prism.nets import resnet_generator  # noqa: F401,E402
from prism.nets import stylegan2  # noqa: F401,E402
from prism.nets import spade, oasis_discriminator  # noqa: F401,E402  (register "oasis_generator", "oasis_discriminator")
from prism.nets import inversion  # noqa: F401,E402  (registers "stylegan_encoder")
from prism.nets import effnet_discriminator  # noqa: F401,E402  (registers the effnet_*_discriminator networks)
