"""Safe image reading shared by every task: one place decides what a readable image is.

Every failure is an `ImageReadError` naming the file and the reason, so datasets can skip and
count bad files and the CLI can report them while the rest go on.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
DEFAULT_MAX_PIXELS = 80_000_000  # ~ 10000 x 8000; larger is treated as a decompression bomb
# open_image checks every header against its own `max_pixels` before decoding; PIL's fixed global
# limit would otherwise override a caller's larger one.
Image.MAX_IMAGE_PIXELS = None


class ImageReadError(Exception):
    """kind: unreadable | empty | not_image | too_many_pixels | corrupt (callers map it, e.g. to
    HTTP 413 vs 415, without parsing the message)."""

    def __init__(self, path, reason: str, kind: str = "corrupt"):
        self.path, self.reason, self.kind = Path(path), reason, kind
        super().__init__(f"{path}: {reason}")


class DataError(ValueError):
    """A dataset cannot be used at all (missing or empty folder)."""


def list_images(inputs, recursive: bool = True) -> list[Path]:
    """Image files among `inputs` (files or folders), sorted; folders are searched recursively.

    A folder holding no image at all is an error (probably the wrong path), as is a missing path.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(p for p in item.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
            if not files:
                raise DataError(f"{item}: no image files ({', '.join(sorted(IMAGE_EXTS))}) in this folder")
            found.extend(files)
        elif item.is_file():
            found.append(item)
        else:
            raise DataError(f"{item}: no such file or folder")
    return found


@dataclass
class LoadedImage:
    """Decoded pixels: uint8 when the source is 8-bit (a 12-Mpx photo stays 37 MB, not 150 MB),
    else float32 in [0, 1]; HxW for single-channel sources, HxWx3 otherwise."""
    pixels: np.ndarray
    alpha: np.ndarray | None  # float32 HxW in [0, 1], when the file has transparency
    was_gray: bool           # the file had a single channel

    @property
    def rgb(self) -> np.ndarray:
        """float32 HxWx3 in [0, 1]."""
        x = self.pixels.astype(np.float32) / 255.0 if self.pixels.dtype == np.uint8 else self.pixels
        return np.ascontiguousarray(np.repeat(x[..., None], 3, axis=2) if x.ndim == 2 else x)

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]


def open_image(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open with EXIF orientation applied, refusing empty, non-image and oversized files
    before the pixels are decoded."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ImageReadError(path, f"cannot read file ({e.strerror})", "unreadable") from None
    return _open(path, path, size, max_pixels)


def open_image_bytes(data: bytes, name: str = "<upload>", max_pixels: int = DEFAULT_MAX_PIXELS,
                     formats: tuple[str, ...] | None = None) -> Image.Image:
    """open_image for bytes (uploads): the same checks, nothing touches the file system.
    formats: PIL format names to accept (e.g. ("PNG", "JPEG")); None accepts any PIL reads."""
    import io
    return _open(io.BytesIO(data), name, len(data), max_pixels, formats)


def read_image_bytes(data: bytes, name: str = "<upload>", max_pixels: int = DEFAULT_MAX_PIXELS,
                     formats: tuple[str, ...] | None = None) -> "LoadedImage":
    return pil_to_float(open_image_bytes(data, name, max_pixels, formats))


def _open(source, path, size: int, max_pixels: int, formats: tuple[str, ...] | None = None) -> Image.Image:
    if size == 0:
        raise ImageReadError(path, "empty file (0 bytes)", "empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(source, formats=formats)
            w, h = img.size  # header only, nothing decoded yet
            if w * h > max_pixels:
                raise ImageReadError(path, f"{w}x{h} = {w * h:,} pixels exceeds the limit of "
                                           f"{max_pixels:,} (possible decompression bomb)", "too_many_pixels")
            img.load()
            return ImageOps.exif_transpose(img)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(path, "not an image file PIL can read" if not formats else
                             f"not an image in an accepted format ({', '.join(formats)})", "not_image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageReadError(path, "too many pixels (possible decompression bomb)", "too_many_pixels") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(path, f"corrupt or truncated image ({e})") from None


def pil_to_float(img: Image.Image) -> LoadedImage:
    """Any PIL mode (1, L, LA, P, RGB, RGBA, CMYK, I;16, I, F) -> float RGB [0,1] + alpha."""
    mode = img.mode
    alpha = None
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit (and 32-bit integer, which PIL uses for 16-bit sources) span 0..65535; float
        # images are taken as 0..1. Never guessed from the content: a dark image stays dark.
        arr = np.asarray(img, dtype=np.float32)
        peak = 1.0 if mode == "F" else 65535.0
        return LoadedImage(np.clip(arr / peak, 0, 1).astype(np.float32), None, True)
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA"):
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255.0
    if mode in ("1", "L", "LA"):
        return LoadedImage(np.array(img.convert("L")), alpha, True)  # np.array: a writable copy
    return LoadedImage(np.array(img.convert("RGB")), alpha, False)


def read_image(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    return pil_to_float(open_image(path, max_pixels))


def to_float(image) -> LoadedImage:
    """PIL image or numpy array (HxW, HxWx1/3/4; uint8, uint16 or float in [0,1]) -> LoadedImage."""
    if isinstance(image, LoadedImage):
        return image
    if isinstance(image, Image.Image):
        return pil_to_float(ImageOps.exif_transpose(image))
    arr = np.asarray(image)
    if arr.dtype == np.uint8 and arr.ndim in (2, 3) and (arr.ndim == 2 or arr.shape[2] in (1, 3)):
        return LoadedImage(np.ascontiguousarray(arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr),
                           None, arr.ndim == 2 or arr.shape[2] == 1)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535.0
    else:
        arr = np.clip(arr.astype(np.float32), 0, 1)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image array, got shape {arr.shape}")
    alpha = arr[..., 3] if arr.shape[2] == 4 else None
    gray = arr.shape[2] == 1
    return LoadedImage(np.ascontiguousarray(arr[..., 0] if gray else arr[..., :3]), alpha, gray)


def float_to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    out = (np.clip(rgb, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    img = Image.fromarray(out, "RGB")
    if alpha is not None:
        img.putalpha(Image.fromarray((np.clip(alpha, 0, 1) * 255.0 + 0.5).astype(np.uint8), "L"))
    return img
