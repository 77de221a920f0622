"""Image-quality numbers. PSNR/SSIM and mean IoU come from torchmetrics, CIEDE2000 from scikit-image;
only the colorfulness formula (Hasler & Suesstrunk 2003), which no library ships, is written here."""
from __future__ import annotations

import numpy as np
import torch
from kornia.color import rgb_to_lab


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
    return MulticlassJaccardIndex(num_classes, average="macro", ignore_index=IGNORE)


def mean_iou(pred: torch.Tensor, truth: torch.Tensor, num_classes: int) -> float:
    """mean_iou_metric on one set of label maps."""
    metric = mean_iou_metric(num_classes)
    metric.update(pred, truth)
    return float(metric.compute())
