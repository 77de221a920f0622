"""`prism inspect`: what is in one or two image folders before training on them.

Counts, size and mode distributions and unreadable files (each decoded with the same checks the
datasets use, so "readable" here means "a dataset will load it"), plus per-channel histograms:
two domains side by side show at a glance how far apart their colours are (photos vs paintings).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prism.data.images import DEFAULT_MAX_PIXELS, ImageReadError, list_images, open_image

HISTOGRAM_SIDE = 128  # histograms are taken on thumbnails: the distribution barely changes, the cost does


@dataclass
class FolderSummary:
    path: Path
    files: int = 0
    sizes: Counter = field(default_factory=Counter)      # (width, height) -> count
    modes: Counter = field(default_factory=Counter)      # PIL mode -> count
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    histogram: np.ndarray = field(default_factory=lambda: np.zeros((3, 256), dtype=np.int64))  # R, G, B

    @property
    def readable(self) -> int:
        return self.files - len(self.unreadable)


def summarize_folder(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, progress=None) -> FolderSummary:
    """Decode every image under `path` (recursively); progress(n_done) is called after each file."""
    summary = FolderSummary(Path(path))
    files = list_images(path)
    summary.files = len(files)
    for i, file in enumerate(files):
        try:
            img = open_image(file, max_pixels)
        except ImageReadError as e:
            summary.unreadable.append((file, e.reason))
        else:
            summary.sizes[img.size] += 1
            summary.modes[img.mode] += 1
            img.thumbnail((HISTOGRAM_SIDE, HISTOGRAM_SIDE))
            # Histograms of what training sees: every mode as 8-bit RGB (gray counts in all three).
            rgb = np.asarray(img.convert("RGB")).reshape(-1, 3)
            for c in range(3):
                summary.histogram[c] += np.bincount(rgb[:, c], minlength=256)
        if progress:
            progress(i + 1)
    return summary


def describe_sizes(sizes: Counter, top: int = 3) -> str:
    if not sizes:
        return "-"
    common = ", ".join(f"{w}x{h} ({n})" for (w, h), n in sizes.most_common(top))
    if len(sizes) <= top:
        return common
    widths, heights = [w for w, _ in sizes], [h for _, h in sizes]
    return (f"{common}, ... {len(sizes)} sizes; width {min(widths)}..{max(widths)}, "
            f"height {min(heights)}..{max(heights)}")


def plot_summaries(summaries: list[FolderSummary], out: str | Path) -> Path:
    """One panel of R/G/B histograms (fraction of pixels) per folder, side by side with shared axes,
    and a bar plot of readable / unreadable counts."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out = Path(out)
    n = len(summaries)
    fig, axes = plt.subplots(1, n + 1, figsize=(4.2 * (n + 1), 3.6), gridspec_kw={"width_ratios": [3] * n + [2]})
    hist_axes = axes[:n]
    for ax, s in zip(hist_axes, summaries):
        total = max(int(s.histogram[0].sum()), 1)
        for c, colour in enumerate(("red", "green", "blue")):
            ax.plot(np.arange(256), s.histogram[c] / total, color=colour, lw=1.2, label=colour[0].upper())
        ax.set_title(f"{s.path.name or s.path} ({s.readable} images)", fontsize=10)
        ax.set_xlabel("pixel value")
        ax.set_xlim(0, 255)
    hist_axes[0].set_ylabel("fraction of pixels")
    hist_axes[0].legend(loc="upper right", fontsize=8)
    top = max(ax.get_ylim()[1] for ax in hist_axes)
    for ax in hist_axes:
        ax.set_ylim(0, top)  # same scale, so the two domains compare directly
    bars = axes[n]
    names = [s.path.name or str(s.path) for s in summaries]
    bars.bar(names, [s.readable for s in summaries], color="tab:blue", label="readable")
    bars.bar(names, [len(s.unreadable) for s in summaries], bottom=[s.readable for s in summaries],
             color="tab:red", label="unreadable")
    bars.set_title("images", fontsize=10)
    bars.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
