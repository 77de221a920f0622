"""`prism eval cyclegan` / `prism eval pix2pix`: score an RGB -> RGB translator on a folder.

Unpaired (CycleGAN): the photos of the source domain are translated and compared, as a
distribution, with a folder of real target-domain images: FID, KID and MiFID (prism.fid, i.e.
torchmetrics on FID Inception features; the real folder's statistics are cached). Beside them the
cycle reconstruction error A -> B -> A, clean and with N(0, 0.08) noise on the translated image,
which needs no Inception weights and is always reported.

Paired (pix2pix): A|B pair images; the source half is translated and scored against the other
half with L1 / PSNR / SSIM, plus FID / KID / MiFID when the Inception weights are at hand.

Images are translated at their own size, padded as `prism translate` pads them; the translations
go to the feature network as the 8-bit images `prism translate` would write, so the numbers equal
those of a folder of its outputs.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from rich.progress import Progress
from torch import nn

from prism.data.images import ImageReadError, list_images, read_image
from prism.evaluation import model_name, peak_rss_mb
from prism.fid.metrics import named_scores, optional_feature_network
from prism.metrics import CYCLE_NOISE_STD, Averager, paired_metrics
from prism.nets.common import pad_for

DISTRIBUTION_KEYS = ("fid", "kid_mean", "kid_std", "mifid")


# --- shared pieces -------------------------------------------------------------------------------------
class _FeatureCollector:
    """Features of images extracted batch by batch, so the translations never pile up in memory."""

    def __init__(self, net: nn.Module | None, batch_size: int):
        self.net, self.batch_size, self.chunks = net, batch_size, []

    def add(self, images: list[np.ndarray]) -> None:
        from prism.fid.metrics import extract_features
        if self.net is not None and images:
            self.chunks.append(extract_features(images, self.net, self.batch_size).features)

    def feature_set(self):
        from prism.fid.metrics import FeatureSet
        features = torch.cat(self.chunks) if self.chunks else torch.empty(0, 0)
        return FeatureSet(count=len(features), features=features)


def _distribution_scores(net, real, fakes: _FeatureCollector, batch_size: int, device, cache_dir,
                         notes: list[str]) -> tuple[dict, dict]:
    """(FID/KID/MiFID row entries, details) of the collected translations against `real` (a folder,
    cached by prism.fid, or a _FeatureCollector)."""
    from prism.fid.metrics import MIFID_COSINE_THRESHOLD, distribution_metrics
    if net is None:
        return {}, {}
    fake_set = fakes.feature_set()
    if fake_set.count < 2:
        notes.append(f"FID, KID and MiFID skipped: they need at least 2 translated images, got {fake_set.count}")
        return {}, {}
    real_in = real.feature_set() if isinstance(real, _FeatureCollector) else real
    r = distribution_metrics(real_in, fake_set, feature=net, batch_size=batch_size, device=device,
                             cache_dir=cache_dir, mifid_cosine_distance_eps=MIFID_COSINE_THRESHOLD)
    details = {"real_count": r["real_count"], "real_from_cache": r["real_from_cache"],
               "kid_subset_size": r["kid_subset_size"], "mifid_cosine_threshold": MIFID_COSINE_THRESHOLD,
               "feature": r["feature"], "real_skipped": r["real_skipped"]}
    return named_scores(net, {k: r[k] for k in DISTRIBUTION_KEYS}), details


def _read(path, skipped: list[str]) -> torch.Tensor | None:
    """(3,H,W) in [0,1], or None (and a line in `skipped`) for an unreadable file."""
    try:
        return torch.from_numpy(read_image(path).rgb).permute(2, 0, 1)
    except ImageReadError as e:
        skipped.append(f"{e.path}: {e.reason}")
        return None


def _same_size_batches(images: list[torch.Tensor], G: nn.Module, batch_size: int):
    """Yield (indices, padded [-1, 1] batch, (h, w)): one forward pass per image size, padded as
    Translator.translate_batch pads."""
    by_shape: dict[tuple, list[int]] = {}
    for i, image in enumerate(images):
        by_shape.setdefault(tuple(image.shape), []).append(i)
    for idxs in by_shape.values():
        for k in range(0, len(idxs), batch_size):
            chunk = idxs[k:k + batch_size]
            padded = [pad_for(G, images[i] * 2 - 1)[0] for i in chunk]
            yield chunk, torch.stack(padded), tuple(images[chunk[0]].shape[1:])


def _as_8bit(x: torch.Tensor) -> list[np.ndarray]:
    """(B,3,H,W) in [0,1] -> HxWx3 uint8 arrays, rounded as prism.data.images.float_to_pil does."""
    return list((x.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())


def _resolve_direction(translator, direction: str | None) -> str:
    translator.generator(direction)  # ValueError naming the model's directions if it lacks this one
    return direction or ("AtoB" if "AtoB" in translator.generators else translator.directions[0])


# --- unpaired (CycleGAN) ---------------------------------------------------------------------------------
@torch.no_grad()
def evaluate_unpaired_translator(translator, data, real=None, inception_weights=None, direction: str | None = None,
                                 limit: int = 0, batch_size: int = 16, noise_std: float = CYCLE_NOISE_STD,
                                 seed: int = 0, feature="inception", cache_dir=None, progress: bool = True) -> dict:
    """Translate the source-domain photos in `data` and score the translations.

    Cycle error: mean over images of the L1 (0..1 pixel units) between each photo and
    G_back(G_fwd(photo)), and the same with N(0, noise_std) (in the networks' [-1, 1] units, as
    training's validation) added to G_fwd(photo), drawn from a generator seeded with `seed`.
    FID/KID/MiFID against the folder `real` when given; `feature` may replace the FID Inception
    with any nn.Module returning (N, d) features (see prism.fid)."""
    direction = _resolve_direction(translator, direction)
    back = "BtoA" if direction == "AtoB" else "AtoB"
    G, G_back = translator.generators[direction], translator.generators.get(back)
    notes: list[str] = []
    if G_back is None:
        notes.append(f"cycle error skipped: the model has no {back} generator to reconstruct with")
    net = None
    if real is None:
        notes.append("FID, KID and MiFID skipped: give real target-domain images (--real DIR) to compute them")
    else:
        list_images(real)  # a wrong path fails now, before the translation work
        net = optional_feature_network(feature, inception_weights, translator.device, notes)
    files = list_images(data)[: limit or None]
    fakes, cycle = _FeatureCollector(net, batch_size), Averager()
    noise = torch.Generator().manual_seed(seed)  # on the CPU: the same draws whatever the device
    skipped, seconds, n = [], 0.0, 0
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("evaluating", total=len(files))
        for start in range(0, len(files), batch_size):
            images = [x for x in (_read(f, skipped) for f in files[start:start + batch_size]) if x is not None]
            translations = []
            for _, x, (h, w) in _same_size_batches(images, G, batch_size):
                x = x.to(translator.device)
                t0 = time.perf_counter()
                fake = G(x)
                translations += _as_8bit((fake[..., :h, :w] + 1) / 2)  # to the CPU: timed to the end
                seconds += time.perf_counter() - t0
                if G_back is not None:
                    # the padded translation goes back as it is: the reconstruction is cropped after
                    jitter = (torch.randn(fake.shape, generator=noise) * noise_std).to(fake.device)
                    rec, rec_noisy = G_back(fake), G_back(fake + jitter)
                    cycle.add({"cycle_l1": _l1_per_image(rec, x, h, w),
                               "cycle_l1_noisy": _l1_per_image(rec_noisy, x, h, w)}, n=len(x))
            fakes.add(translations)
            n += len(images)
            bar.update(task, advance=len(files[start:start + batch_size]))
    scores, details = _distribution_scores(net, real, fakes, batch_size, translator.device, cache_dir, notes)
    skipped += [f"real set: {line}" for line in details.pop("real_skipped", [])]
    return {
        "task": translator.task, "data": str(data), "count": n,
        "rows": {"model": {**cycle.means(), **scores}},
        "direction": direction, "real": str(real) if real is not None else None, **details,
        "cycle_noise_std": noise_std if G_back is not None else None, "noise_seed": seed,
        "images_per_s": round(n / seconds, 2) if seconds else None, "peak_rss_mb": round(peak_rss_mb(), 1),
        "model": model_name(translator), "notes": notes, "skipped": skipped,
    }


def _l1_per_image(rec: torch.Tensor, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return ((rec - x)[..., :h, :w].abs() / 2).flatten(1).mean(1)  # [-1, 1] differences -> 0..1 units


# --- paired (pix2pix) --------------------------------------------------------------------------------------
def split_pair(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(3,H,W) A|B side-by-side pair -> (A, B), both w//2 wide (an odd middle column is dropped)."""
    half = image.shape[-1] // 2
    return image[..., :half], image[..., half:2 * half]


@torch.no_grad()
def evaluate_paired_translator(translator, data, real=None, inception_weights=None, direction: str | None = None,
                               limit: int = 0, batch_size: int = 16, feature="inception", cache_dir=None,
                               progress: bool = True) -> dict:
    """Translate the source half of every A|B pair image in `data` (the model's direction) and score
    it against the other half: L1, PSNR, SSIM. FID/KID/MiFID too when the feature network is at
    hand, against the folder `real` or, without one, against the target halves themselves."""
    direction = _resolve_direction(translator, direction)
    G = translator.generators[direction]
    notes: list[str] = []
    if real is not None:
        list_images(real)
    net = optional_feature_network(feature, inception_weights, translator.device, notes)
    files = list_images(data)[: limit or None]
    fakes, targets, acc = _FeatureCollector(net, batch_size), _FeatureCollector(net, batch_size), Averager()
    skipped, seconds, n = [], 0.0, 0
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("evaluating", total=len(files))
        for start in range(0, len(files), batch_size):
            pairs = [split_pair(x) for x in (_read(f, skipped) for f in files[start:start + batch_size]) if x is not None]
            sources, truths = zip(*((b, a) if direction == "BtoA" else (a, b) for a, b in pairs)) if pairs else ((), ())
            translations, target_images = [], []
            for idxs, x, (h, w) in _same_size_batches(list(sources), G, batch_size):
                t0 = time.perf_counter()
                out = (G(x.to(translator.device))[..., :h, :w].float().cpu() + 1) / 2
                seconds += time.perf_counter() - t0
                truth = torch.stack([truths[i] for i in idxs])
                acc.add(paired_metrics(out, truth), n=len(out))
                translations += _as_8bit(out)
                target_images += _as_8bit(truth)
            fakes.add(translations)
            if real is None:
                targets.add(target_images)
            n += len(pairs)
            bar.update(task, advance=len(files[start:start + batch_size]))
    scores, details = _distribution_scores(net, real if real is not None else targets, fakes, batch_size,
                                           translator.device, cache_dir, notes)
    skipped += [f"real set: {line}" for line in details.pop("real_skipped", [])]
    return {
        "task": translator.task, "data": str(data), "count": n,
        "rows": {"model": {**acc.means(), **scores}},
        "direction": direction, "real": str(real) if real is not None else "the target halves", **details,
        "images_per_s": round(n / seconds, 2) if seconds else None, "peak_rss_mb": round(peak_rss_mb(), 1),
        "model": model_name(translator), "notes": notes, "skipped": skipped,
    }
