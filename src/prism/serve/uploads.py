"""Uploaded bytes in, encoded images out; every check happens before pixels are decoded.

Order of defence: the body size is capped by the route (413 before it is read), then each
image's header is parsed for its format (an allow-list: no exotic PIL plugins, no EPS/ghostscript)
and its pixel count (413 for a single image over `max_pixels`, or for a request whose images
together exceed `max_total_pixels`), and only then is it decoded, by prism.data.images.
"""
from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from prism.data.images import ImageReadError, LoadedImage, read_image_bytes
from prism.infer import encode_options
from prism.serve.errors import ServeError

# PIL names of the formats we decode; MPO is how PIL names most phone-camera JPEGs
ALLOWED_FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "BMP", "TIFF")
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}
Image.init()  # registers every plugin, MPO included, so the allow-list can name them
_OPEN_FORMATS = tuple(f for f in ALLOWED_FORMATS if f in Image.OPEN)


@dataclass
class Upload:
    name: str   # the client's file name: used only in messages and suggested download names
    data: bytes


def check_headers(uploads: list[Upload], max_pixels: int, max_total_pixels: int, max_images: int) -> None:
    """Cheap checks on the event loop so bad requests never take a worker slot."""
    if not uploads:
        raise ServeError(422, "no_image", "send at least one image")
    if len(uploads) > max_images:
        raise ServeError(413, "too_many_images", f"{len(uploads)} images in one request; the limit is {max_images}")
    total = 0
    for up in uploads:
        w, h = _header_size(up)
        if w * h > max_pixels:
            raise ServeError(413, "too_many_pixels", f"{up.name}: {w}x{h} = {w * h:,} pixels exceeds the "
                                                     f"limit of {max_pixels:,} per image")
        total += w * h
    if total > max_total_pixels:
        raise ServeError(413, "too_many_pixels", f"the images of this request hold {total:,} pixels together; "
                                                 f"the limit is {max_total_pixels:,}")


def _header_size(up: Upload) -> tuple[int, int]:
    if not up.data:
        raise ServeError(415, "not_an_image", f"{up.name}: empty file")
    try:
        with Image.open(io.BytesIO(up.data), formats=_OPEN_FORMATS) as img:
            return img.size  # parsed from the header; nothing decoded
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ServeError(415, "not_an_image", f"{up.name}: not an image in a supported format "
                                              f"({', '.join(f.lower() for f in ALLOWED_FORMATS if f != 'MPO')})") from None


def decode(up: Upload, max_pixels: int) -> LoadedImage:
    """Decode (in a worker thread). The header was checked already; prism.data.images checks it
    again before decoding, so this is safe on its own too."""
    try:
        return read_image_bytes(up.data, name=up.name, max_pixels=max_pixels, formats=_OPEN_FORMATS)
    except ImageReadError as e:
        if e.kind == "too_many_pixels":
            raise ServeError(413, "too_many_pixels", f"{up.name}: {e.reason}") from None
        raise ServeError(415, "not_an_image", f"{up.name}: {e.reason}") from None


def encode(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpeg":
        # JPEG has no alpha channel: flatten onto white rather than let PIL refuse
        if image.mode in ("RGBA", "LA"):
            flat = Image.new("RGB", image.size, "white")
            flat.paste(image, mask=image.getchannel("A"))
            image = flat
        image.convert("RGB").save(buf, "JPEG", **encode_options("jpeg"))
    else:
        image.save(buf, "PNG", **encode_options("png"))
    return buf.getvalue()


def to_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def safe_stem(name: str, fallback: str = "image") -> str:
    """A client's file name reduced to a harmless stem for Content-Disposition and downloads:
    last path component, no extension, only [A-Za-z0-9_-], at most 60 characters."""
    base = re.split(r"[\\/]", name or "")[-1].rsplit(".", 1)[0]
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", base).strip("_")[:60]
    return stem or fallback
