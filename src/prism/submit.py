"""A Kaggle "I'm Something of a Painter Myself" submission: `images.zip` holding 7,000-10,000
Monet-style 256x256 RGB JPEGs, made by translating photos (AtoB = photo -> painting).

Photos are reused cyclically when the folder has fewer than `count`. No pass repeats another:
every other pass mirrors the photos, and from the third pass on each pair of passes zooms 10 %
further into the centre (pass 2: 1.1x, pass 4: 1.2x), so the zip holds no exact duplicate (e.g.
7,000 images from the 2,000 photos of monet2photo).
"""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from PIL import Image, ImageOps

from prism.data.images import ImageReadError, list_images, open_image

KAGGLE_MIN, KAGGLE_MAX = 7_000, 10_000
SIZE = 256
JPEG_QUALITY = 95


def check_count(count: int, min_count: int | None = None, max_count: int | None = None) -> None:
    """The competition's bounds unless others are given (tests make small zips)."""
    min_count = KAGGLE_MIN if min_count is None else min_count
    max_count = KAGGLE_MAX if max_count is None else max_count
    if not min_count <= count <= max_count:
        raise ValueError(f"count must be between {min_count:,} and {max_count:,} (the competition accepts "
                         f"7,000-10,000 images), got {count:,}")


def write_submission(translator, photos, count: int, out_zip: str | Path, direction: str | None = "AtoB",
                     batch_size: int = 8, min_count: int | None = None, max_count: int | None = None,
                     progress: bool = True) -> tuple[Path, list[tuple[Path, str]]]:
    """Translate `count` photos (cycling through the folder) into out_zip; -> (zip path, skipped
    unreadable photos with reasons). The zip is written to a temporary name and renamed at the end:
    an interrupted run leaves no half-written images.zip."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    check_count(count, min_count, max_count)
    translator.generator(direction)  # an unknown direction fails now, not after loading photos
    files = list_images(photos)
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_zip.with_name(f".{out_zip.name}.{os.getpid()}.tmp")
    skipped: dict[Path, str] = {}
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[failed]} unreadable skipped"), TimeRemainingColumn())
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf, Progress(*columns, disable=not progress) as bar:
            task = bar.add_task("images", total=count, failed=0)
            written, cursor = 0, 0
            while written < count:
                batch = []
                while len(batch) < min(batch_size, count - written):
                    if len(skipped) == len(files):
                        raise ValueError(f"{photos}: none of the {len(files)} photos is readable "
                                         f"(first: {next(iter(skipped.values()))})")
                    path, repeat = files[cursor % len(files)], cursor // len(files)
                    cursor += 1
                    if path in skipped:
                        continue
                    try:
                        batch.append(square(open_image(path), mirror=repeat % 2 == 1, zoom=1 + 0.1 * (repeat // 2)))
                    except ImageReadError as e:
                        skipped[path] = e.reason
                for img in translator.translate_batch(batch, direction, batch_size):
                    zf.writestr(f"{written:05d}.jpg", _jpeg(img))
                    written += 1
                bar.update(task, completed=written, failed=len(skipped))
        os.replace(tmp, out_zip)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out_zip, sorted(skipped.items())


def square(img: Image.Image, mirror: bool = False, zoom: float = 1.0) -> Image.Image:
    """Any photo -> SIZE x SIZE RGB: short side resized to SIZE, centre crop (Kaggle's photos
    already are 256x256 and pass unchanged); zoom > 1 keeps only the central 1/zoom of it."""
    img = img.convert("RGB")
    if img.size != (SIZE, SIZE):
        img = ImageOps.fit(img, (SIZE, SIZE), Image.BICUBIC)
    if zoom > 1:
        side = round(SIZE / zoom)
        left = (SIZE - side) // 2
        img = img.resize((SIZE, SIZE), Image.BICUBIC, box=(left, left, left + side, left + side))
    return ImageOps.mirror(img) if mirror else img


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()
