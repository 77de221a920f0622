"""Running a predictor over files and folders: shared by every task's CLI command and the web app.

Reads each file safely (a bad one is reported with its reason and the rest go on), batches,
shows a progress bar, mirrors input folder structure under the output folder and never
overwrites an input.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from prism.data.images import IMAGE_EXTS, DataError, ImageReadError, list_images, read_image

KEEP_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}


@dataclass
class RunReport:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    replaced: list[Path] = field(default_factory=list)   # written over an earlier output
    existing: list[Path] = field(default_factory=list)   # left alone (skip_existing): already there


def file_progress(progress: bool, what: str = "images") -> tuple[Progress, int]:
    """The bar every file command shows: done/total, and written and failed apart."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[ok]} ok, {task.fields[failed]} failed"), TimeRemainingColumn())
    bar = Progress(*columns, disable=not progress)
    return bar, bar.add_task(what, total=None, ok=0, failed=0)


def advance(bar: Progress, task: int, report: RunReport, ok: int, n: int) -> None:
    """`ok` of the files counted so far were made; failures are read from the report."""
    bar.update(task, advance=n, ok=ok, failed=len(report.failed))


def skip_done(pairs: list[tuple[Path, Path]], report: RunReport, skip_existing: bool) -> list[tuple[Path, Path]]:
    """With skip_existing, the pairs whose output is already there are left out (and counted)."""
    if not skip_existing:
        return pairs
    todo = []
    for src, dst in pairs:
        if dst.exists():
            report.existing.append(dst)
        else:
            todo.append((src, dst))
    return todo


def plan_outputs(inputs: list[str | Path], out_dir: Path, suffix: str = "") -> list[tuple[Path, Path]]:
    """(input file, output file) pairs; folders are searched recursively and mirrored."""
    pairs = []
    for item in map(Path, inputs):
        if item.is_dir():
            pairs += [(f, out_dir / f.relative_to(item)) for f in list_images(item)]
        elif item.is_file():
            pairs.append((item, out_dir / item.name))
        else:
            raise DataError(f"{item}: no such file or folder")
    inputs_resolved = {src.resolve() for src, _ in pairs}
    taken: set[Path] = set()
    out = []
    for src, dst in pairs:
        if dst.suffix.lower() not in KEEP_EXTS:
            dst = dst.with_suffix(".png")
        if suffix:
            dst = dst.with_name(f"{dst.stem}{suffix}{dst.suffix}")
        dst = unclaimed(dst, inputs_resolved | taken)
        taken.add(dst.resolve())
        out.append((src, dst))
    return out


def unclaimed(dst: Path, claimed: set[Path]) -> Path:
    """dst, or dst with _prism, _prism2, ... appended, whichever is no input nor other output."""
    candidate, n = dst, 1
    while candidate.resolve() in claimed:
        candidate = dst.with_name(f"{dst.stem}_prism{n if n > 1 else ''}{dst.suffix}")
        n += 1
    return candidate


# One set of encoder settings for files and the web service. PNG level 3: most of level 6's size at
# a fraction of its time (a 12-MP photo); JPEG/WebP 95: no visible loss on colour edges.
ENCODE_OPTIONS = {"png": {"compress_level": 3}, "jpeg": {"quality": 95}, "webp": {"quality": 95}}


def encode_options(suffix: str) -> dict:
    """PIL save() keywords for a file suffix or format name ('.jpg', 'jpeg', 'PNG', ...)."""
    name = suffix.lower().lstrip(".")
    return ENCODE_OPTIONS.get("jpeg" if name == "jpg" else name, {})


def output_path(img: Image.Image, path: Path) -> Path:
    if img.mode == "RGBA" and path.suffix.lower() in (".jpg", ".jpeg", ".bmp"):
        return path.with_suffix(".png")  # keep the alpha channel
    return path


def save_image(img: Image.Image, path: Path, report: RunReport | None = None) -> Path:
    """Write atomically; returns the path written (RGBA meant for JPEG/BMP becomes PNG). A file
    already there is replaced, and noted in `report`."""
    path = output_path(img, path)
    if report is not None and path.exists():
        report.replaced.append(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    img.save(tmp, **encode_options(path.suffix))
    tmp.replace(path)
    return path


def run_on_files(inputs, out_dir, process: Callable[[list], list[Image.Image]], batch_size: int = 8,
                 suffix: str = "", progress: bool = True, max_pixels: int | None = None,
                 io_threads: int = 2, skip_existing: bool = False) -> RunReport:
    """process(list of LoadedImage) -> list of PIL images, one per input.

    Decoding the next batch and encoding the previous one run in `io_threads` worker threads while
    the network works on the current batch (PIL and torch release the GIL), so the network is not
    left waiting on JPEG codecs. With skip_existing, inputs whose output is already there are left
    alone (resuming an interrupted folder); otherwise earlier outputs are replaced and counted.
    """
    report = RunReport()
    pairs = plan_outputs(inputs, Path(out_dir), suffix)
    claimed = {p.resolve() for pair in pairs for p in pair}
    pairs = skip_done(pairs, report, skip_existing)
    batches = [pairs[i:i + batch_size] for i in range(0, len(pairs), batch_size)]
    read = (lambda src: read_image(src, max_pixels)) if max_pixels else read_image
    bar, task = file_progress(progress)
    bar.update(task, total=len(pairs))
    made = 0
    with bar, ThreadPoolExecutor(max(1, io_threads)) as pool:
        reads = [pool.submit(read, src) for src, _ in batches[0]] if batches else []
        writes: list = []
        for k, batch in enumerate(batches):
            current = reads
            reads = [pool.submit(read, src) for src, _ in batches[k + 1]] if k + 1 < len(batches) else []
            chunk, loaded = [], []
            for (src, dst), future in zip(batch, current):
                try:
                    loaded.append(future.result())
                    chunk.append((src, dst))
                except ImageReadError as e:
                    report.failed.append((src, e.reason))
            results = []
            if loaded:
                try:
                    results = process(loaded)
                except Exception as e:  # one bad batch must not lose the rest
                    report.failed += [(s, f"{type(e).__name__}: {e}") for s, _ in chunk]
            _collect(writes, report)  # the previous batch's files: bounded memory, ordered report
            for (src, dst), img in zip(chunk, results):
                final = output_path(img, dst)
                if final != dst:  # renamed (alpha kept as PNG): must not land on a claimed path
                    final = unclaimed(final, claimed)
                    claimed.add(final.resolve())
                writes.append((src, final, pool.submit(save_image, img, final, report)))
            made += len(results)
            advance(bar, task, report, made, len(batch))
        _collect(writes, report)
        advance(bar, task, report, len(report.written), 0)
    return report


def _collect(writes: list, report: RunReport) -> None:
    for src, dst, future in writes:
        try:
            report.written.append(future.result())
        except OSError as e:
            report.failed.append((src, f"cannot write {dst}: {e}"))
    writes.clear()


__all__ = ["IMAGE_EXTS", "RunReport", "advance", "file_progress", "plan_outputs", "run_on_files", "save_image", "skip_done"]
