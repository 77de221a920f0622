"""Image-quality numbers. PSNR/SSIM and mean IoU come from torchmetrics, CIEDE2000 from scikit-image;
only the colorfulness formula (Hasler & Suesstrunk 2003), which no library ships, is written here."""
from __future__ import annotations

import numpy as np
import torch
from kornia.color import rgb_to_lab

# CycleGAN's robustness probe (validation and `prism eval`): N(0, 0.08) added to the translated
# image, in [-1, 1] units, before it is reconstructed: a cycle carried by a hidden code breaks.
CYCLE_NOISE_STD = 0.08


def colorfulness(rgb: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) in [0,1] -> (B,) Hasler-Suesstrunk colourfulness on the 0..255 scale."""
    r, g, b = (rgb * 255.0).unbind(1)
    rg, yb = r - g, 0.5 * (r + g) - b
    std = torch.sqrt(rg.flatten(1).var(1, unbiased=False) + yb.flatten(1).var(1, unbiased=False))
    mean = torch.sqrt(rg.flatten(1).mean(1) ** 2 + yb.flatten(1).mean(1) ** 2)
    return std + 0.3 * mean


def ciede2000(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) sRGB in [0,1] -> (B,) mean CIEDE2000 colour difference per image."""
    from skimage.color import deltaE_ciede2000  # imported here: slow to import, rarely needed
    lp = rgb_to_lab(pred.float().clamp(0, 1)).permute(0, 2, 3, 1).cpu().numpy()
    lt = rgb_to_lab(target.float().clamp(0, 1)).permute(0, 2, 3, 1).cpu().numpy()
    return torch.tensor([float(np.mean(deltaE_ciede2000(a, b))) for a, b in zip(lp, lt)])


def colorization_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image metrics of a batch: psnr, ssim, ciede2000, colorfulness (of pred)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
    pred, target = pred.float().clamp(0, 1), target.float().clamp(0, 1)
    return {
        "psnr": peak_signal_noise_ratio(pred, target, data_range=1.0, reduction="none", dim=(1, 2, 3)),
        "ssim": structural_similarity_index_measure(pred, target, data_range=1.0, reduction="none"),
        "ciede2000": ciede2000(pred, target),
        "colorfulness": colorfulness(pred),
    }


# --- the colorization protocol -------------------------------------------------------------------------
# A truth with no colour to predict (a gray or sepia-free monochrome photo) scores the gray baseline at
# 50-100+ dB and would rule a mean over images; such truths are left out, and counted.
COLOURLESS_COLOURFULNESS = 1.0   # Hasler-Suesstrunk, 0..255 scale
COLOURLESS_GRAY_PSNR = 50.0      # dB of the gray image against the truth
NEUTRAL_CHROMA = 5.0             # C*ab below which a truth pixel counts as neutral
COLOURLESS_RULE = (f"truths with colourfulness < {COLOURLESS_COLOURFULNESS:g} or gray-vs-truth PSNR > "
                   f"{COLOURLESS_GRAY_PSNR:g} dB are left out (nothing to colour)")


def colourless_reason(truth: torch.Tensor, gray: torch.Tensor) -> str | None:
    """Why a (3,H,W) truth is left out of colour scoring (None: it is scored). `gray` is the same
    lightness without colour, the colorizer's input."""
    from torchmetrics.functional.image import peak_signal_noise_ratio
    cf = float(colorfulness(truth[None].float().clamp(0, 1)))
    if cf < COLOURLESS_COLOURFULNESS:
        return f"colourfulness {cf:.2f}"
    psnr = float(peak_signal_noise_ratio(gray.float().clamp(0, 1), truth.float().clamp(0, 1), data_range=1.0))
    return f"gray scores {psnr:.1f} dB" if psnr > COLOURLESS_GRAY_PSNR else None


def chroma(rgb: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) sRGB in [0,1] -> (B,H,W) CIE Lab chroma C*ab."""
    lab = rgb_to_lab(rgb.float().clamp(0, 1))
    return torch.hypot(lab[:, 1], lab[:, 2])


class ColorizationScore:
    """One colorizer's (or baseline's) scores over a set of photos, image by image (sizes may
    differ): mean and median of per-image PSNR, PSNR of the MSE pooled over every pixel (no image
    rules it), SSIM, CIEDE2000, colourfulness, and the neutral cast: the mean C*ab the output adds
    where the truth is near neutral (C*ab < NEUTRAL_CHROMA), pooled over those pixels."""

    def __init__(self):
        self.per_image: dict[str, list[float]] = {}
        self.sq_err, self.pixels = 0.0, 0
        self.cast, self.neutral_pixels = 0.0, 0

    def add(self, pred: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
        pred, truth = pred[None].float().clamp(0, 1), truth[None].float().clamp(0, 1)
        values = {k: float(v[0]) for k, v in colorization_metrics(pred, truth).items()}
        for k, v in values.items():
            self.per_image.setdefault(k, []).append(v)
        self.sq_err += float(((pred - truth).double() ** 2).sum())
        self.pixels += pred.numel()
        truth_c = chroma(truth)
        neutral = truth_c < NEUTRAL_CHROMA
        self.cast += float((chroma(pred) - truth_c)[neutral].double().sum())
        self.neutral_pixels += int(neutral.sum())
        return values

    def summary(self) -> dict[str, float]:
        if not self.pixels:
            return {}
        mean = {k: float(np.mean(v)) for k, v in self.per_image.items()}
        mse = self.sq_err / self.pixels
        return {"psnr": mean["psnr"], "psnr_median": float(np.median(self.per_image["psnr"])),
                "psnr_pooled": float(10 * np.log10(1.0 / mse)) if mse > 0 else float("inf"),
                "ssim": mean["ssim"], "ciede2000": mean["ciede2000"], "colorfulness": mean["colorfulness"],
                "neutral_cast": self.cast / self.neutral_pixels if self.neutral_pixels else float("nan")}


def paired_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image l1 (0..1 pixel units), psnr and ssim of (B,3,H,W) images in [0,1] against their
    aligned targets: what paired translation (pix2pix) is scored by."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
    pred, target = pred.float().clamp(0, 1), target.float().clamp(0, 1)
    return {
        "l1": (pred - target).abs().flatten(1).mean(1),
        "psnr": peak_signal_noise_ratio(pred, target, data_range=1.0, reduction="none", dim=(1, 2, 3)),
        "ssim": structural_similarity_index_measure(pred, target, data_range=1.0, reduction="none"),
    }


class Averager:
    """Running means of per-image metric tensors."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, values: dict[str, torch.Tensor], n: int) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(torch.as_tensor(v, dtype=torch.float64).sum())
        self.count += n

    def means(self) -> dict[str, float]:
        return {k: v / max(self.count, 1) for k, v in self.sums.items()}


def mean_iou_metric(num_classes: int):
    """Dataset-level mean IoU of label maps (the semantic-synthesis protocol of pix2pixHD, SPADE,
    OASIS): torchmetrics' MulticlassJaccardIndex, fed batch by batch with `update(pred, truth)`
    ((B,H,W) class indices). One confusion matrix is summed over every pixel seen; truth pixels
    that are don't-care (IGNORE) are left out; IoU = TP / (TP + FP + FN) per class; the mean is
    over the classes present in the prediction or the truth (a class absent from both counts
    neither as 0 nor as 1)."""
    from torchmetrics.classification import MulticlassJaccardIndex

    from prism.data.labels import IGNORE
    # no cross-process sync: rank 0 validates alone in a multi-process run (prism.train.trainer)
    return MulticlassJaccardIndex(num_classes, average="macro", ignore_index=IGNORE, sync_on_compute=False)


def mean_iou(pred: torch.Tensor, truth: torch.Tensor, num_classes: int) -> float:
    """mean_iou_metric on one set of label maps."""
    metric = mean_iou_metric(num_classes)
    metric.update(pred, truth)
    return float(metric.compute())
