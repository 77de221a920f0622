"""Semantic image synthesis: OASIS (Sushko et al., "You Only Need Adversarial Supervision for
Semantic Image Synthesis", ICLR 2021). Label map (+ noise) -> photo.

- D is a U-Net segmenter with N+1 outputs. On real photos it must predict each pixel's class, on
  generated ones the extra class "fake"; G is trained so D assigns generated pixels their *true*
  class. Real-class terms are class-balanced (each class present in the batch weighs the same in
  total), so small classes (poles, signs, people) are not drowned by road and sky. No VGG loss.
- LabelMix: real and fake are mixed by a random binary map that is constant over each class
  region; D's output on the mix must equal the same mix of its outputs on real and fake (MSE).
- 3D noise: a z_dim noise map is concatenated to the label map; different seeds give different
  images, and re-drawing the noise inside one class's region re-draws only that region (up to
  the generator's receptive field, `OASISGenerator.receptive_radius`).
- Instance maps (Cityscapes) enter as a boundary channel (pix2pixHD), never as raw ids.
- G's EMA is the trainer's train.ema. The paper's SPADE uses batch norm, whose running
  statistics are what eval mode uses; the trainer's EMA copy carries the live G's statistics,
  which do not match the averaged weights, so before the EMA generator draws samples or is
  validated its statistics are re-estimated on `ema_stats.images` training label maps (as the
  OASIS code does before every evaluation and save). nets.G.norm: none / instance need no refresh.

Differences from the paper: D's step reuses the fake drawn for G's step (the paper draws a new one
after G's update); LabelMix draws its bits per image and class (the paper per class and batch).
"""
from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from prism.config import ConfigError
from prism.data.images import float_to_pil
from prism.data.labels import IGNORE, ClassTable, cityscapes_partner, instance_edges, read_instances, read_label
from prism.metrics import Averager
from prism.registry import TASKS
from prism.tasks.base import Phase, Task
from prism.tasks.label_data import LABEL_DATA_DEFAULTS, label_card, label_dataset, label_format
from prism.train.loggers import image_grid


# --- the pieces of the objective (plain functions: tested against hand computations) -------------------
def one_hot(label: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B,H,W) indices -> (B,N,H,W) float; don't-care pixels are all-zero, not a class."""
    hot = F.one_hot(torch.where(label == IGNORE, num_classes, label), num_classes + 1)
    return hot[..., :num_classes].permute(0, 3, 1, 2).float()


def semantic_input(label: torch.Tensor, num_classes: int, edges: bool, instance: torch.Tensor | None = None):
    """The generator's label input: one-hot classes, plus the instance-boundary channel when the
    model uses one (class boundaries from the label map itself when no instance map is given)."""
    x = one_hot(label, num_classes)
    if edges:
        x = torch.cat([x, instance_edges(instance if instance is not None else label).to(x)], 1)
    return x


def class_balance_weights(label: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B,H,W) per-pixel weights P / (K * n_c): P pixels in the batch, K classes present, n_c
    pixels of the pixel's class; 0 on don't-care. Every present class sums to P / K."""
    valid = label != IGNORE
    counts = torch.bincount(label[valid], minlength=num_classes).float()
    present = int((counts > 0).sum())
    coef = label.numel() / (max(present, 1) * counts.clamp(min=1))
    return torch.where(valid, coef[label.clamp(max=num_classes - 1)], torch.zeros((), device=label.device))


def n_plus_one_loss(logits: torch.Tensor, label: torch.Tensor, weights: torch.Tensor | None = None,
                    fake: bool = False) -> torch.Tensor:
    """Per-pixel cross-entropy over N+1 classes (0 = fake, 1 + c = class c), averaged over all
    pixels. fake: every pixel's target is "fake", unweighted. Else the target is the true class,
    weighted (don't-care pixels must have weight 0)."""
    if fake:
        return F.cross_entropy(logits, torch.zeros_like(label))
    target = torch.where(label == IGNORE, 0, label + 1)
    ce = F.cross_entropy(logits, target, reduction="none")
    return (ce * (weights if weights is not None else (label != IGNORE).float())).mean()


def labelmix_mask(label: torch.Tensor) -> torch.Tensor:
    """(B,1,H,W) binary map, one random bit per (image, class region; don't-care is a region too)."""
    bits = torch.randint(0, 2, (label.shape[0], IGNORE + 1), device=label.device)
    return bits.gather(1, label.flatten(1)).view(label.shape[0], 1, *label.shape[1:]).float()


def labelmix_loss(mask, d_mixed, d_fake, d_real) -> torch.Tensor:
    return F.mse_loss(mask * d_real + (1 - mask) * d_fake, d_mixed)


def synthesis_noise(label: torch.Tensor, G: nn.Module, seed: int, resample_class: int | None = None,
                    base_seed: int | None = None) -> torch.Tensor:
    """(B,H,W) -> (B, z_dim, H, W): seed's noise (G.draw_noise: a vector, or a per-pixel map)
    everywhere, or, with resample_class, seed's inside that class's pixels and base_seed's
    elsewhere (the image of base_seed with one class re-drawn). CPU generators: the same seed
    gives the same noise on any device; every image of the batch gets the same draw."""
    b, h, w = label.shape

    def draw(s):
        return G.draw_noise(1, h, w, torch.Generator().manual_seed(int(s))).to(label.device).expand(b, -1, -1, -1)
    noise = draw(seed)
    if resample_class is not None:
        base = draw(seed if base_seed is None else base_seed)
        noise = torch.where((label == resample_class)[:, None], noise, base)
    return noise


@torch.no_grad()
def refresh_batchnorm(G: nn.Module, semantic_batches, seed: int = 0) -> bool:
    """Re-estimate G's batch-norm running statistics as the plain average over these batches
    (fixed noise draws; only the BN layers switch to train mode, spectral norm stays frozen).
    SyncBatchNorm layers (multi-GPU runs with train.sync_batchnorm) compute local statistics
    here: this runs on one process, and a collective there would wait for the others forever."""
    bns = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return False
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
        m.train()
        if isinstance(m, nn.SyncBatchNorm):
            m.forward = types.MethodType(nn.modules.batchnorm._BatchNorm.forward, m)
    gen = torch.Generator().manual_seed(seed)
    try:
        for sem in semantic_batches:
            G(sem, G.draw_noise(sem.shape[0], *sem.shape[2:], generator=gen).to(sem))
    finally:
        for m, momentum in zip(bns, momenta):
            m.momentum = momentum
            m.eval()
            m.__dict__.pop("forward", None)
    return True


# The architectures whose class count the task fills in from the data (N+1-class discriminators).
SEMANTIC_GENERATORS = ("oasis_generator",)
SEGMENTATION_DISCRIMINATORS = ("oasis_discriminator", "effnet_seg_discriminator")


# --- the task ----------------------------------------------------------------------------------------------
@TASKS.register("oasis")
class OASISTask(Task):
    name = "oasis"
    # No metric here tells image quality (the paper's mIoU needs a trained segmenter, FID Inception
    # weights: `prism eval oasis` after training): the latest checkpoint is exported.
    best_metric = None
    eval_options = ("labels", "segmenter", "inception_weights", "seed")  # `prism eval` options it takes
    defaults = {
        "data": {**LABEL_DATA_DEFAULTS, "instances": False},
        "nets": {"G": {"arch": "oasis_generator", "label_channels": None, "z_dim": 64, "width": 64, "n_blocks": 6,
                       "spade_hidden": 128, "norm": "batch"},
                 "D": {"arch": "oasis_discriminator", "num_classes": None, "width": 64, "n_blocks": 6}},
        "optim": {"G": {"lr": 1e-4, "betas": [0.0, 0.999]}, "D": {"lr": 4e-4, "betas": [0.0, 0.999]}},
        "loss": {"labelmix_weight": 10.0, "class_balance": True},
        "ema_stats": {"images": 32, "batch_size": 8},  # label maps for the EMA generator's BN statistics
        "train": {"ema": 0.9999},
    }

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        d = cfg["data"]
        self.decoding, self.table = label_format(d)
        if d["instances"] and d["format"] != "cityscapes":
            raise ConfigError("data.instances: instance maps are read for the cityscapes format only")
        self.edges = bool(d["instances"])
        self._fill_channels(cfg["nets"])
        self._stats_key = None

    def _fill_channels(self, nets: dict) -> None:
        """The class count comes from the data; it is written into the specs (and so into the run's
        config.yaml and the model card), which is what rebuilds the networks later."""
        for net, archs, key, value in (("G", SEMANTIC_GENERATORS, "label_channels", self.table.num_classes + self.edges),
                                       ("D", SEGMENTATION_DISCRIMINATORS, "num_classes", self.table.num_classes)):
            spec = nets.get(net) or {}
            if spec.get("arch") not in archs:  # another architecture: its spec is the user's to complete
                continue
            if spec.get(key) is None:
                spec[key] = value
            elif spec[key] != value:
                raise ConfigError(f"nets.{net}.{key}={spec[key]}, but the data has {value} "
                                  f"({self.table.num_classes} classes{' + instance edges' if self.edges else ''})")

    # --- data -----------------------------------------------------------------------------------------
    def _dataset(self, train: bool):
        d = self.cfg["data"]
        photos, labels = (d["train"], d["train_labels"]) if train else (d["val"], d["val_labels"])
        return label_dataset(d, self.table, self.decoding, photos, labels, train)

    def train_dataset(self):
        if not self.cfg["data"]["train"]:
            raise ConfigError("data.train is not set (see docs/oasis.md for each format's layout)")
        return self._dataset(train=True)

    def val_dataset(self):  # photos are optional here: label maps alone still show and score G
        d = self.cfg["data"]
        return self._dataset(train=False) if d["val"] or d["val_labels"] else None

    # --- training -------------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        return [Phase("G", "G", self.g_step, frozen=("D",)), Phase("D", "D", self.d_step)]

    def _semantic(self, batch: dict) -> torch.Tensor:
        return semantic_input(batch["label"], self.table.num_classes, self.edges, batch.get("instance"))

    def _weights(self, label: torch.Tensor) -> torch.Tensor:
        if self.cfg["loss"]["class_balance"]:
            return class_balance_weights(label, self.table.num_classes)
        return (label != IGNORE).float()

    def g_step(self, batch, state):
        label, semantic = batch["label"], self._semantic(batch)
        b, _, h, w = semantic.shape
        fake = self.nets["G"](semantic, self.plain("G").draw_noise(b, h, w).to(semantic))
        loss = n_plus_one_loss(self.nets["D"](fake), label, self._weights(label))
        state["fake"] = fake.detach()
        logs = {"G_adv": loss.detach()}
        if self.decoding == "colour":
            logs["label_unmatched"] = batch["unmatched"].float().mean()
        return loss, logs

    def d_step(self, batch, state):
        label, fake, real = batch["label"], state["fake"], batch["image"] * 2 - 1
        D = self.nets["D"]
        out_fake, out_real = D(fake), D(real)
        loss_fake = n_plus_one_loss(out_fake, label, fake=True)
        loss_real = n_plus_one_loss(out_real, label, self._weights(label))
        total, logs = loss_fake + loss_real, {"D_fake": loss_fake.detach(), "D_real": loss_real.detach()}
        weight = self.cfg["loss"]["labelmix_weight"]
        if weight > 0:
            mask = labelmix_mask(label)
            mixed = D(mask * real + (1 - mask) * fake)
            lm = labelmix_loss(mask, mixed, out_fake, out_real)
            total = total + weight * lm
            logs["D_labelmix"] = lm.detach()
        return total, logs

    # --- the generator used for pictures and numbers --------------------------------------------------
    def _eval_generator(self) -> nn.Module:
        G = self.eval_net("G")
        if G is not getattr(self, "ema", {}).get("G"):
            return G  # the trained network: its own running statistics are right
        key = sum(p._version for p in G.parameters())  # the EMA changes in place at every step
        if key != self._stats_key:
            refresh_batchnorm(G, self._stats_batches())
            self._stats_key = sum(p._version for p in G.parameters())
        return G

    def _stats_batches(self):
        if not hasattr(self, "_stats_inputs"):
            ds = self.train_dataset()
            n = min(self.cfg["ema_stats"]["images"], len(ds))
            picks = [round(i * (len(ds) - 1) / max(n - 1, 1)) for i in range(n)]  # spread over the set
            samples = [ds[(i, i)] for i in picks]  # fixed keys: the same maps at every refresh
            size = self.cfg["ema_stats"]["batch_size"]
            self._stats_inputs = [self._semantic({k: torch.stack([s[k] for s in samples[j:j + size]])
                                                  for k in ("label", "instance") if k in samples[0]})
                                  for j in range(0, len(samples), size)]
        device = next(self.plain("G").parameters()).device
        return (x.to(device) for x in self._stats_inputs)

    @torch.no_grad()
    def _fakes(self, batch: dict, seed: int) -> torch.Tensor:
        G, semantic = self._eval_generator(), self._semantic(batch)
        return (G(semantic, synthesis_noise(batch["label"], G, seed)) + 1) / 2

    @torch.no_grad()
    def sample_grid(self, batch) -> torch.Tensor:
        """One row per label map: label colours | two noise seeds | the real photo."""
        columns = [self.table.colourize(batch["label"]), self._fakes(batch, 0), self._fakes(batch, 1)]
        if "image" in batch:
            columns.append(batch["image"])
        return image_grid(columns)

    @torch.no_grad()
    def validate(self, batches) -> dict[str, float]:
        """Diagnostics, not quality scores: `diversity` (mean |difference| of two seeds' images, 0..1;
        near 0 means the noise is ignored), `d_seg_acc_fake` / `d_seg_acc_real` (share of labelled
        pixels the current D assigns their true class, on generated / real images) and
        `d_fake_rate` (share of generated pixels D calls fake)."""
        acc, D = Averager(), self.plain("D")
        for batch in batches:
            label = batch["label"]
            valid = (label != IGNORE).flatten(1)
            a, b = self._fakes(batch, 0), self._fakes(batch, 1)
            pred = D(a * 2 - 1).argmax(1)
            values = {"diversity": (a - b).abs().flatten(1).mean(1),
                      "d_seg_acc_fake": _share((pred == label + 1).flatten(1), valid),
                      "d_fake_rate": (pred == 0).flatten(1).float().mean(1)}
            if "image" in batch:
                values["d_seg_acc_real"] = _share((D(batch["image"] * 2 - 1).argmax(1) == label + 1).flatten(1), valid)
            acc.add(values, n=len(label))
        return acc.means()

    def card(self) -> dict:
        return {**label_card(self.cfg["data"], self.table, self.decoding), "instance_edges": self.edges}

    @classmethod
    def predictor(cls, nets, card):
        return Synthesizer(nets["G"], card)

    @classmethod
    def evaluate(cls, predictor, data, **kwargs) -> dict:
        from prism.evaluation import evaluate_synthesis
        return evaluate_synthesis(predictor, data, **kwargs)


def _share(hits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return (hits & valid).sum(1).float() / valid.sum(1).clamp(min=1)


# --- inference ---------------------------------------------------------------------------------------------
class Synthesizer:
    """`prism.load_model()` for OASIS models: `.synthesize(label_map, seed)` -> PIL photo of the
    label map's own size. Label maps: (H,W) class-index arrays/tensors, or files / PIL images read
    the way the model's training data was (its class table and decoding)."""

    task = "oasis"

    def __init__(self, G: nn.Module, card: dict):
        self.G, self.card = G.eval(), card
        opts = card.get("options", {})
        self.table = ClassTable.from_dict(opts["classes"])
        self.edges, self.decoding = bool(opts.get("instance_edges")), opts.get("decoding", "ids")
        self.tolerance = float(opts.get("tolerance", 50.0))
        self.render_size = opts.get("render_size")  # long side the network draws at; None: the map's own size
        self.device = next(G.parameters()).device

    def read_label(self, path, decoding: str | None = None, instance=None):
        """A label file -> (class indices, instance ids or None); a Cityscapes *_gtFine_labelIds.png
        brings its *_instanceIds.png partner when the model uses instance edges."""
        label, _ = read_label(path, self.table, decoding or self.decoding, self.tolerance)
        if instance is None and self.edges and str(path).endswith("_gtFine_labelIds.png"):
            partner = cityscapes_partner(Path(path), "instance")
            instance = read_instances(partner) if partner.is_file() else None
        return label, instance

    @torch.no_grad()
    def synthesize(self, label_map, seed: int = 0, resample_class=None, base_seed: int | None = None,
                   instance=None, render_size="card") -> Image.Image:
        """resample_class (name or index) with base_seed: base_seed's image with that class's region
        re-drawn from `seed`. render_size: long side to draw at ("card": the training size; None:
        the label map's own); the result is resized back to the label map's size either way."""
        if isinstance(label_map, (str, Path, Image.Image)):
            label_map, instance = self.read_label(label_map, instance=instance)
        label = torch.as_tensor(np.asarray(label_map), dtype=torch.long)
        bad = set(label.unique().tolist()) - set(range(self.table.num_classes)) - {IGNORE}
        if label.ndim != 2 or bad:
            raise ValueError(f"label map must be (H, W) class indices 0..{self.table.num_classes - 1} "
                             f"(or {IGNORE}); got shape {tuple(label.shape)}, values {sorted(bad)[:8]}")
        inst = torch.as_tensor(np.asarray(instance), dtype=torch.long) if instance is not None else None
        H, W = label.shape
        long_side = self.render_size if render_size == "card" else render_size
        scale = long_side / max(H, W) if long_side else 1.0
        h, w = max(1, round(H * scale)), max(1, round(W * scale))
        maps = [label] + ([inst] if inst is not None else [])
        maps = [F.interpolate(m[None, None].float(), size=(h, w), mode="nearest-exact")[0, 0].long() for m in maps]
        m = self.G.size_multiple  # pad by repeating the border: no class appears that is not there
        maps = [F.pad(x[None, None].float(), (0, -w % m, 0, -h % m), mode="replicate")[0].long() for x in maps]
        label_p, inst_p = maps[0].to(self.device), (maps[1].to(self.device) if len(maps) > 1 else None)
        semantic = semantic_input(label_p, self.table.num_classes, self.edges, inst_p)
        cls_index = None if resample_class is None else self.table.index_of(resample_class)
        noise = synthesis_noise(label_p, self.G, seed, cls_index, base_seed)
        out = (self.G(semantic, noise)[:, :, :h, :w].float().cpu() + 1) / 2
        if (h, w) != (H, W):
            out = F.interpolate(out, size=(H, W), mode="bicubic", antialias=True, align_corners=False)
        return float_to_pil(out[0].clamp(0, 1).permute(1, 2, 0).numpy())


FILE_FORMATS = {"cityscapes-ids": "ids", "camvid": "ids", "generic": "ids", "colour": "colour"}


def synthesize_files(synth: Synthesizer, inputs, out_dir, file_format: str | None = None, seed: int = 0,
                     resample_class=None, base_seed: int | None = None, render_size="card", progress: bool = True,
                     skip_existing: bool = False):
    """Label files and folders -> photos under out_dir (folders mirrored, inputs never overwritten).
    file_format picks how files decode (default: as the model's training data); for
    cityscapes-ids only *_gtFine_labelIds.png files are taken from folders. With skip_existing,
    label maps whose output is already there are left alone."""
    from prism.data.images import DataError, ImageReadError
    from prism.infer import RunReport, advance, file_progress, plan_outputs, save_image, skip_done
    if file_format is not None and file_format not in FILE_FORMATS:
        raise ValueError(f"unknown label format '{file_format}'; use one of {', '.join(FILE_FORMATS)}")
    decoding = FILE_FORMATS.get(file_format) if file_format else synth.decoding
    pairs = plan_outputs(inputs, Path(out_dir))
    if file_format == "cityscapes-ids" or (file_format is None and synth.card["options"].get("format") == "cityscapes"):
        pairs = [(src, dst) for src, dst in pairs if src.name.endswith("_gtFine_labelIds.png")]
    report = RunReport()
    pairs = skip_done(pairs, report, skip_existing)
    bar, task = file_progress(progress, "label maps")
    bar.update(task, total=len(pairs))
    with bar:
        for src, dst in pairs:
            try:
                label, instance = synth.read_label(src, decoding)
                img = synth.synthesize(label, seed, resample_class, base_seed, instance, render_size)
                report.written.append(save_image(img, dst, report))
            except ImageReadError as e:
                report.failed.append((src, e.reason))  # the summary names the file itself
            except DataError as e:
                report.failed.append((src, str(e)))
            advance(bar, task, report, len(report.written), 1)
    return report
