"""Semantic segmentation: photo -> label map, a small U-Net trained with per-pixel cross-entropy
on the same photos and label maps the OASIS task reads (every format, one class table).

It exists to score semantic synthesis the way the papers do (pix2pixHD, SPADE, OASIS): a
segmenter trained on real photos labels the generated ones, and its mIoU against the input label
maps says how recognisable each class is (`prism eval oasis --segmenter`). Its own mIoU on the
real validation photos is the ceiling to read that number against. The papers use large
pretrained segmenters (DRN-D-105, UperNet); a from-scratch U-Net gives lower absolute numbers, so
compare models with the same segmenter only.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from prism.config import ConfigError
from prism.data.images import read_image, read_image_bytes, to_float
from prism.data.labels import IGNORE, ClassTable
from prism.metrics import mean_iou_metric
from prism.registry import TASKS
from prism.tasks.base import Phase, Task
from prism.tasks.label_data import LABEL_DATA_DEFAULTS, label_card, label_dataset, label_format
from prism.train.loggers import image_grid


@TASKS.register("segment")
class SegmentTask(Task):
    name = "segment"
    best_metric = ("miou", "max")
    inference_nets = ("S",)
    eval_options = ("labels",)  # `prism eval` options it takes
    defaults = {
        "data": dict(LABEL_DATA_DEFAULTS),
        # raw logits out (no tanh); no dropout: it is the pix2pix generator's noise source, not wanted here
        "nets": {"S": {"arch": "unet", "in_channels": 3, "out_channels": None, "depth": 6, "width": 32,
                       "norm": "batch", "dropout": 0.0, "final_activation": "none"}},
        "optim": {"S": {"lr": 1e-3, "betas": [0.9, 0.999], "weight_decay": 0.0}},
    }

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        self.decoding, self.table = label_format(cfg["data"])
        spec = cfg["nets"].get("S") or {}
        if spec.get("arch") == "unet":  # the class count comes from the data, as for OASIS
            if spec.get("out_channels") is None:
                spec["out_channels"] = self.table.num_classes
            elif spec["out_channels"] != self.table.num_classes:
                raise ConfigError(f"nets.S.out_channels={spec['out_channels']}, but the data has "
                                  f"{self.table.num_classes} classes")

    # --- data ---------------------------------------------------------------------------------------
    def train_dataset(self):
        d = self.cfg["data"]
        if not d["train"]:
            raise ConfigError("data.train is not set (the same layouts as OASIS: see docs/oasis.md)")
        return label_dataset(d, self.table, self.decoding, d["train"], d["train_labels"], train=True)

    def val_dataset(self):
        d = self.cfg["data"]
        if not (d["val"] or d["val_labels"]):
            return None
        ds = label_dataset(d, self.table, self.decoding, d["val"], d["val_labels"], train=False)
        if not ds.has_photos:
            raise ConfigError("data.val: these label maps have no photos beside them; a segmenter is validated on photos")
        return ds

    # --- training -----------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        return [Phase("S", "S", self.s_step)]

    def s_step(self, batch, state):
        loss = F.cross_entropy(self.nets["S"](batch["image"] * 2 - 1), batch["label"], ignore_index=IGNORE)
        return loss, {"S_ce": loss.detach()}

    @torch.no_grad()
    def _predict(self, batch) -> torch.Tensor:
        return self.eval_net("S")(batch["image"] * 2 - 1).argmax(1)

    @torch.no_grad()
    def sample_grid(self, batch) -> torch.Tensor:
        """One row per photo: photo | true labels | predicted labels."""
        return image_grid([batch["image"], self.table.colourize(batch["label"]),
                           self.table.colourize(self._predict(batch))])

    @torch.no_grad()
    def validate(self, batches) -> dict[str, float]:
        """miou over the whole validation set (see prism.metrics.mean_iou_metric) and the share of
        labelled pixels predicted right (pixel_acc)."""
        miou, hits, labelled = mean_iou_metric(self.table.num_classes), 0, 0
        for batch in batches:
            pred, label = self._predict(batch).cpu(), batch["label"].cpu()
            miou.update(pred, label)
            hits += int(((pred == label) & (label != IGNORE)).sum())
            labelled += int((label != IGNORE).sum())
        return {"miou": float(miou.compute()), "pixel_acc": hits / max(labelled, 1)} if labelled else {}

    def card(self) -> dict:
        return label_card(self.cfg["data"], self.table, self.decoding)

    @classmethod
    def predictor(cls, nets, card):
        return Segmenter(nets["S"], card)

    @classmethod
    def evaluate(cls, predictor, data, **kwargs) -> dict:
        from prism.evaluation import evaluate_segmenter
        return evaluate_segmenter(predictor, data, **kwargs)


# --- inference ----------------------------------------------------------------------------------------
class Segmenter:
    """`prism.load_model()` for segmentation models: `.segment(image)` -> (H, W) int64 class indices
    (into `.table`) at the image's own size. Images: PIL, numpy (HxW, HxWx3; uint8 or float in
    [0, 1]), encoded bytes or a file path."""

    task = "segment"

    def __init__(self, S: nn.Module, card: dict):
        self.S, self.card = S.eval(), card
        opts = card.get("options", {})
        self.table = ClassTable.from_dict(opts["classes"])
        self.render_size = opts.get("render_size")  # long side the network sees; None: the image's own
        self.device = next(S.parameters()).device

    @torch.no_grad()
    def segment(self, image, render_size="card") -> np.ndarray:
        """render_size: long side to segment at ("card": the training size; None: the image's own).
        The class scores are upsampled to the image's size before the argmax, so boundaries stay
        smooth at any size."""
        loaded = (read_image(image) if isinstance(image, str) or hasattr(image, "__fspath__") else
                  read_image_bytes(image) if isinstance(image, bytes) else to_float(image))
        x = torch.from_numpy(loaded.rgb).permute(2, 0, 1)[None]
        H, W = x.shape[-2:]
        long_side = self.render_size if render_size == "card" else render_size
        scale = long_side / max(H, W) if long_side else 1.0
        h, w = max(1, round(H * scale)), max(1, round(W * scale))
        if (h, w) != (H, W):
            x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        m = self.S.size_multiple  # reflect where the image is big enough, replicate otherwise
        ph, pw = -h % m, -w % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
        logits = self.S(x.to(self.device) * 2 - 1)[..., :h, :w].float()
        if (h, w) != (H, W):
            logits = F.interpolate(logits, size=(H, W), mode="bilinear", align_corners=False)
        return logits.argmax(1)[0].cpu().numpy()
