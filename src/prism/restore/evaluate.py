"""`prism eval stylegan`: how well projection restores degraded faces, beside trivial baselines.

Every face in the folder (taken as already framed like the training faces: centre crop, no
alignment) is degraded in each way, restored, and scored against the clean face at the model's
resolution: PSNR, SSIM and a perceptual distance (LPIPS when its weights are given, else the
discriminator-feature distance without its pixel term). Rows per degradation: the composite
restoration, the raw projection G(w), and the baseline restoration of the degraded input itself
(gray: the gray image; mask: diffusion fill; downsample: bicubic up-sampling). With samples = K > 1
the composite is built from the mean of K projections, and a "one sample" row shows the first
projection's composite alone.
"""
from __future__ import annotations

import time

import torch
from PIL import Image, ImageOps
from rich.progress import Progress
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from prism.data.images import ImageReadError, list_images, open_image
from prism.evaluation import model_name, peak_rss_mb
from prism.metrics import Averager
from prism.restore.api import to_tensor
from prism.restore.degradations import build_degradation
from prism.restore.perceptual import DiscriminatorDistance, LPIPS, LPIPSDistance, PixelDistance
from prism.restore.projector import ProjectionSettings, project

BASELINES = {"gray": "gray input", "mask": "diffusion fill", "downsample": "bicubic", "none": "input"}


def default_hole(size: int) -> torch.Tensor:
    """The evaluation's hole: the middle of the face, nose and upper lip (a quarter of its width
    on each side of the centre, 40 % to 75 % of its height)."""
    hole = torch.zeros(1, 1, size, size)
    hole[..., int(0.40 * size):int(0.75 * size), int(0.25 * size):int(0.75 * size)] = 1
    return hole


def _scores(pred: torch.Tensor, truth: torch.Tensor, perceptual) -> dict[str, torch.Tensor]:
    pred, truth = pred.float().clamp(0, 1), truth.float().clamp(0, 1)
    with torch.no_grad():
        return {"psnr": peak_signal_noise_ratio(pred, truth, data_range=1.0, reduction="none", dim=(1, 2, 3)),
                "ssim": structural_similarity_index_measure(pred, truth, data_range=1.0, reduction="none"),
                "perceptual": perceptual(pred, perceptual.prepare(truth))}


def paired_gain(restored: torch.Tensor, baseline: torch.Tensor) -> dict:
    """Face-by-face comparison of (faces, [psnr, ssim]) scores: the mean gain over the baseline, its
    standard error (faces differ far more from each other than the methods do, so only paired
    differences tell whether a gain is real) and on how many faces the restoration won."""
    diff = (restored - baseline).double()
    n = len(diff)
    se = diff.std(0, unbiased=True) / n ** 0.5 if n > 1 else torch.full((2,), float("nan"), dtype=torch.float64)
    return {"faces": n, "psnr_gain": float(diff[:, 0].mean()), "psnr_gain_se": float(se[0]),
            "psnr_wins": int((diff[:, 0] > 0).sum()), "ssim_gain": float(diff[:, 1].mean()),
            "ssim_gain_se": float(se[1]), "ssim_wins": int((diff[:, 1] > 0).sum())}


def _gain_line(degradation: str, g: dict) -> str:
    return (f"{degradation}: restored vs {BASELINES[degradation]}, face by face: PSNR {g['psnr_gain']:+.2f} dB "
            f"(standard error {g['psnr_gain_se']:.2f}; better on {g['psnr_wins']}/{g['faces']} faces), "
            f"SSIM {g['ssim_gain']:+.3f} (se {g['ssim_gain_se']:.3f}; better on {g['ssim_wins']}/{g['faces']})")


def _settings_line(predictor, degradation: str, s: dict) -> str:
    start = "the encoder's guess" if predictor.starts_at_encoder(degradation) else "the mean w"
    spread = f", spread {s['spread']:g} x W's RMS radius around the start" if s["spread"] and s["samples"] > 1 else ""
    return f"{degradation}: projected from {start}, {s['steps']} step(s), mean of {s['samples']} sample(s){spread}"


def evaluate_restoration(predictor, data, limit: int = 0, batch_size: int = 8, steps: int | None = None,
                         degradations=("gray", "mask", "downsample"), factor: int = 4, space: str = "w+",
                         lpips_vgg16=None, lpips_lin=None, seed: int = 0, samples: int | None = None, spread: float | None = None,
                         progress: bool = True) -> dict:
    """steps, samples, spread: the projection's; default: the model card's (as `prism restore`), per degradation."""
    asked = {k: v for k, v in (("steps", steps), ("samples", samples), ("spread", spread)) if v is not None}
    settings_for = {d: {**predictor.projection_defaults(d), **asked} for d in degradations}
    R, device = predictor.resolution, predictor.device
    files = list_images(data)[: limit or None]
    if lpips_vgg16 or lpips_lin:
        lpips = LPIPS.from_files(lpips_vgg16, lpips_lin).to(device)
        project_distance = perceptual = LPIPSDistance(lpips, R)
    elif predictor.D is not None:
        project_distance, perceptual = DiscriminatorDistance(predictor.D), DiscriminatorDistance(predictor.D, 0.0)
    else:
        project_distance = perceptual = PixelDistance()
    accs = {f"{d}: {kind}": Averager() for d in degradations
            for kind in ["restored"] + (["one sample"] if settings_for[d]["samples"] > 1 else [])
            + ["projection", f"baseline ({BASELINES[d]})"]}
    per_face = {row: [] for row in accs}  # (faces, [psnr, ssim]) batches, for the paired comparison
    skipped, seconds, n = [], 0.0, 0
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("restoring", total=len(files))
        for start in range(0, len(files), batch_size):
            faces = []
            for f in files[start:start + batch_size]:
                try:
                    faces.append(to_tensor(ImageOps.fit(open_image(f).convert("RGB"), (R, R), Image.LANCZOS)))
                except ImageReadError as e:
                    skipped.append(f"{e.path}: {e.reason}")
            if not faces:
                continue
            truth = torch.cat(faces).to(device)
            for d in degradations:
                op = build_degradation(d, R, default_hole(R), factor)
                observed = op(truth)
                t0 = time.perf_counter()
                settings = ProjectionSettings(space=space, seed=seed, **settings_for[d])
                result = project(predictor.G, observed, op, project_distance, settings,
                                 init_ws=predictor.initial_ws(op, observed))
                seconds += time.perf_counter() - t0
                images = result.images.to(device)
                preds = {"restored": op.composite(result.mean.to(device), observed), "projection": images,
                         "one sample": op.composite(images, observed), f"baseline ({BASELINES[d]})": op.baseline(observed, R)}
                for kind in (k for k in preds if f"{d}: {k}" in accs):
                    scores = _scores(preds[kind], truth, perceptual)
                    accs[f"{d}: {kind}"].add(scores, n=len(truth))
                    per_face[f"{d}: {kind}"].append(torch.stack([scores["psnr"], scores["ssim"]], 1).cpu())
            n += len(truth)
            bar.update(task, advance=len(files[start:start + batch_size]))
    gains = {d: paired_gain(torch.cat(per_face[f"{d}: restored"]), torch.cat(per_face[f"{d}: baseline ({BASELINES[d]})"]))
             for d in degradations if per_face[f"{d}: restored"]}
    return {
        "task": "stylegan", "data": str(data), "count": n, "rows": {k: a.means() for k, a in accs.items()},
        "vs_baseline": gains, "notes": [_gain_line(d, g) for d, g in gains.items()] + [_settings_line(predictor, d, settings_for[d]) for d in degradations],
        "projection_distance": project_distance.name, "perceptual": perceptual.name, "projection": settings_for,
        "encoder_starts": sorted(predictor.encoder_degradations) if predictor.encoder is not None else [],
        "seconds_per_restoration": round(seconds / max(n * len(degradations), 1), 2),
        "peak_rss_mb": round(peak_rss_mb(), 1), "resolution": R,
        "model": model_name(predictor), "skipped": skipped,
    }
