from prism.data.folder import ImageFolder, collate  # noqa: F401
from prism.data.images import DataError, ImageReadError, list_images, read_image  # noqa: F401
from prism.data.sampling import ResumableSampler  # noqa: F401
