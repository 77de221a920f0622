"""Unpaired translation: CycleGAN (Zhu et al. 2017).

G_AB: A -> B and G_BA: B -> A, trained against D_A (real vs generated images of domain A) and D_B,
with cycle consistency ||G_BA(G_AB(a)) - a||_1 (x lambda_cyc = 10) both ways and an identity term
||G_AB(b) - b||_1 (x 0.5 lambda_cyc) that keeps colour composition when nothing needs to change.
LSGAN by default; D learns from a history pool of 50 earlier fakes. Options: noisy cycle
consistency (Gaussian noise on the translated image before reconstruction, so the generators cannot
hide the source in invisible high-frequency signal), DiffAugment on every D input, and a style
term (loss.style_weight): the Gram distance of frozen EfficientNet-Lite0 features between G_AB's
output and the step's real B image, a texture signal that a small D learns only slowly.

Learning rate: constant, then linear decay to 0 (the paper's 100 + 100 epochs): the trainer's
train.lr_schedule=linear_decay with decay_start=0.5.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from prism.artifacts import artifact_indices
from prism.config import ConfigError
from prism.data.images import DEFAULT_MAX_PIXELS, list_images
from prism.data.unpaired import UnpairedFolders, epoch_length, spread_holdout
from prism.losses import AdversarialLoss, StyleLoss
from prism.metrics import CYCLE_NOISE_STD, Averager
from prism.registry import TASKS
from prism.tasks.base import Phase, Task
from prism.tasks.pix2pix import Translator
from prism.train.loggers import image_grid


# --- DiffAugment (Zhao et al. 2020) -----------------------------------------------------------------------
def _color(x: torch.Tensor) -> torch.Tensor:
    def rand():
        return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)
    x = x + (rand() - 0.5)                                                   # brightness
    x = (x - x.mean(1, keepdim=True)) * (rand() * 2) + x.mean(1, keepdim=True)  # saturation
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * (rand() + 0.5) + mean                                # contrast


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    b, _, h, w = x.shape
    lw, lh = int(w * ratio + 0.5), int(h * ratio + 0.5)
    limit = torch.tensor([lw, lh], device=x.device)
    shift = (torch.floor(torch.rand(b, 2, device=x.device) * (2 * limit + 1)) - limit).long()  # integer pixels
    # An integer shift is a gather from the zero-padded image: exact, and twice differentiable on
    # every device (R1 differentiates through it; CUDA's grid_sample has no double backward).
    padded = F.pad(x, (lw, lw, lh, lh))
    ys = torch.arange(h, device=x.device)[None] - shift[:, 1:] + lh        # (b, h)
    xs = torch.arange(w, device=x.device)[None] - shift[:, :1] + lw        # (b, w)
    rows = torch.arange(b, device=x.device)[:, None, None]
    return padded[rows, :, ys[:, :, None], xs[:, None, :]].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device) - ch // 2
    left = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device) - cw // 2
    ys, xs = torch.arange(h, device=x.device).view(1, h, 1), torch.arange(w, device=x.device).view(1, 1, w)
    hole = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)
    return x * (~hole).unsqueeze(1).to(x.dtype)


DIFF_AUGMENT = {"color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """Differentiable augmentation of discriminator inputs, real and fake alike, with fresh random
    draws per call: D cannot memorise a small training set and G still gets gradients through it.
    policy: comma-separated subset of color, translation, cutout ("" = off)."""
    for name in filter(None, (p.strip() for p in policy.split(","))):
        x = DIFF_AUGMENT[name](x)
    return x


class HistoryPool:
    """The last `size` generated images (Shrivastava et al. 2017). Each new fake goes to D as is or,
    with probability 1/2 once the pool is full, swapped for a stored older one: D keeps seeing G's
    past mistakes, which damps the G/D oscillation. Random choices come from the global torch RNG
    (which checkpoints capture); the contents are not, see CycleGANTask.state_dict."""

    def __init__(self, size: int = 50):
        self.size, self.images = size, []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()) < 0.5:
                i = int(torch.randint(self.size, ()))
                out.append(self.images[i].to(image.device))
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"images": torch.stack(self.images).cpu() if self.images else torch.empty(0)}

    def load_state_dict(self, state: dict) -> None:
        images = state["images"]
        self.images = [im.clone() for im in images] if images.numel() else []


@TASKS.register("cyclegan")
class CycleGANTask(Task):
    name = "cyclegan"
    inference_nets = ("G_AB", "G_BA")
    # Neither cycle error (an identity map scores perfectly) nor any metric without a pretrained
    # network tells a good translator: no "best" checkpoint, the latest is exported.
    best_metric = None
    eval_options = ("real", "inception_weights", "direction", "seed")  # `prism eval` options it takes
    defaults = {
        "data": {"A": None, "B": None, "val_A": None, "val_B": None, "holdout": 0, "reserve": {"A": 0, "B": 0},
                 "size": 256, "load_size": 286,
                 "flip": True, "rotate": 0.0, "epoch": "oversample", "max_pixels": DEFAULT_MAX_PIXELS},
        "nets": {"G_AB": {"arch": "resnet_generator", "ngf": 64, "n_blocks": 9, "norm": "instance", "dropout": 0.0},
                 "G_BA": {"arch": "resnet_generator", "ngf": 64, "n_blocks": 9, "norm": "instance", "dropout": 0.0},
                 "D_A": {"arch": "patchgan", "in_channels": 3, "width": 64, "n_layers": 3, "norm": "instance"},
                 "D_B": {"arch": "patchgan", "in_channels": 3, "width": 64, "n_layers": 3, "norm": "instance"}},
        # One optimiser over both generators (their losses are coupled through the cycle terms), one over both Ds.
        "optim": {"G": {"nets": ["G_AB", "G_BA"], "lr": 2e-4, "betas": [0.5, 0.999]},
                  "D": {"nets": ["D_A", "D_B"], "lr": 2e-4, "betas": [0.5, 0.999]}},
        "loss": {"adversarial": "lsgan", "cycle_weight": 10.0, "identity_weight": 0.5, "pool_size": 50,
                 "cycle_noise_std": 0.0, "diffaugment": "",
                 # style_weight: x Gram distance of EfficientNet-Lite0 features, G_AB(a) vs the step's real b
                 "style_weight": 0.0},
        "train": {"batch_size": 1, "lr_schedule": "linear_decay", "decay_start": 0.5},
    }

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        loss, data = cfg["loss"], cfg["data"]
        unknown = {p.strip() for p in loss["diffaugment"].split(",") if p.strip()} - set(DIFF_AUGMENT)
        if unknown:
            raise ConfigError(f"loss.diffaugment: unknown policy {', '.join(sorted(unknown))}; "
                              f"use a comma-separated subset of {', '.join(DIFF_AUGMENT)}")
        try:
            epoch_length(data["epoch"], 1, 1)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.adv = AdversarialLoss(loss["adversarial"])
        self.pools = {"A": HistoryPool(loss["pool_size"]), "B": HistoryPool(loss["pool_size"])}

    # --- state the trainer does not see (proposed hook: Trainer._state/_load call these) ----------------
    def state_dict(self) -> dict:
        return {f"pool_{d}": pool.state_dict() for d, pool in self.pools.items()}

    def load_state_dict(self, state: dict) -> None:
        for d, pool in self.pools.items():
            pool.load_state_dict(state[f"pool_{d}"])

    # --- data ---------------------------------------------------------------------------------------------
    def _folders(self, a, b, train: bool) -> UnpairedFolders:
        d = self.cfg["data"]
        return UnpairedFolders(a, b, size=d["size"], load_size=d["load_size"] if train else None,
                               crop="random" if train else "center", flip=d["flip"] and train,
                               rotate=d["rotate"] if train else 0.0, epoch=d["epoch"] if train else "oversample",
                               max_pixels=d["max_pixels"])

    def _split(self) -> tuple[tuple[list, list], tuple[list, list]]:
        """((train A, train B), (held-out A, held-out B)) files; data.holdout images per domain."""
        train, val, _ = self.split_files()
        return train, val

    def reserved_files(self) -> tuple[list, list]:
        """(A, B) files of data.reserve: kept out of training and validation alike, spread over what
        the holdout leaves, for scoring after training (e.g. a Monet-ness classifier's photos)."""
        return self.split_files()[2]

    def split_files(self) -> tuple[tuple[list, list], tuple[list, list], tuple[list, list]]:
        """(train, held out, reserved), each an (A files, B files) pair."""
        d = self.cfg["data"]
        if not d["A"] or not d["B"]:
            raise ConfigError("data.A and data.B must both be set: a folder of images of each domain, "
                              "e.g. data.A=photos data.B=paintings")
        if d["holdout"] and (d["val_A"] or d["val_B"]):
            raise ConfigError("give either data.holdout (validate on images held out of data.A/B) or "
                              "data.val_A/val_B folders, not both")
        if bool(d["val_A"]) != bool(d["val_B"]):
            raise ConfigError("data.val_A and data.val_B go together: validation translates both ways")
        files = [list_images(d["A"]), list_images(d["B"])]  # a bad path raises DataError, naming it
        try:
            (train_a, val_a), (train_b, val_b) = (spread_holdout(f, d["holdout"]) for f in files)
        except ValueError as e:
            raise ConfigError(f"data.holdout: {e}") from None
        reserve = d["reserve"] or {}
        if not isinstance(reserve, dict) or set(reserve) - {"A", "B"}:
            raise ConfigError(f"data.reserve: give a count per domain, e.g. {{A: 300, B: 0}}; got {reserve!r}")
        try:
            (train_a, res_a), (train_b, res_b) = (spread_holdout(f, int(reserve.get(k, 0)))
                                                  for f, k in ((train_a, "A"), (train_b, "B")))
        except ValueError as e:
            raise ConfigError(f"data.reserve: {e}") from None
        return (train_a, train_b), (val_a, val_b), (res_a, res_b)

    def train_dataset(self):
        return self._folders(*self._split()[0], train=True)

    def val_dataset(self):
        d = self.cfg["data"]
        if d["holdout"]:
            return self._folders(*self._split()[1], train=False)
        if d["val_A"] and d["val_B"]:
            return self._folders(d["val_A"], d["val_B"], train=False)
        return None

    # --- training -------------------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        return [Phase("G", "G", self.g_step, frozen=("D_A", "D_B")), Phase("D", "D", self.d_step)]

    @staticmethod
    def _domains(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return batch["A"] * 2 - 1, batch["B"] * 2 - 1  # the networks work in [-1, 1] (tanh output)

    def _d(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return self.nets[name](diff_augment(x, self.cfg["loss"]["diffaugment"]))

    def _noisy(self, x: torch.Tensor) -> torch.Tensor:
        std = self.cfg["loss"]["cycle_noise_std"]
        return x + std * torch.randn_like(x) if std > 0 else x

    def g_step(self, batch, state):
        w = self.cfg["loss"]
        real_a, real_b = self._domains(batch)
        G_AB, G_BA = self.nets["G_AB"], self.nets["G_BA"]
        fake_b, fake_a = G_AB(real_a), G_BA(real_b)
        gan = self.adv.g_loss(self._d("D_B", fake_b)) + self.adv.g_loss(self._d("D_A", fake_a))
        cycle = F.l1_loss(G_BA(self._noisy(fake_b)), real_a) + F.l1_loss(G_AB(self._noisy(fake_a)), real_b)
        total = gan + w["cycle_weight"] * cycle
        logs = {"G_gan": gan.detach(), "G_cycle": cycle.detach()}
        if w["style_weight"] > 0:  # texture statistics of the target domain (Gatys et al.), A -> B only
            style_loss = self.frozen_module("style", StyleLoss, fake_b.device)
            style = style_loss((fake_b.float() + 1) / 2, (real_b.float() + 1) / 2)
            total, logs["G_style"] = total + w["style_weight"] * style, style.detach()
        if w["identity_weight"] > 0:
            identity = F.l1_loss(G_AB(real_b), real_b) + F.l1_loss(G_BA(real_a), real_a)
            total = total + w["identity_weight"] * w["cycle_weight"] * identity
            logs["G_identity"] = identity.detach()
        state["fake_a"], state["fake_b"] = fake_a.detach(), fake_b.detach()
        return total, logs

    def d_step(self, batch, state):
        real_a, real_b = self._domains(batch)
        loss_a = self.adv.d_loss(self._d("D_A", real_a), self._d("D_A", self.pools["A"].query(state["fake_a"])))
        loss_b = self.adv.d_loss(self._d("D_B", real_b), self._d("D_B", self.pools["B"].query(state["fake_b"])))
        return loss_a + loss_b, {"D_A": loss_a.detach(), "D_B": loss_b.detach()}

    # --- pictures and numbers during training ------------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self, batch) -> torch.Tensor:
        """Rows: real A | fake B | reconstructed A, then real B | fake A | reconstructed B (4 each)."""
        real_a, real_b = (x[:4] for x in self._domains(batch))
        G_AB, G_BA = self.eval_net("G_AB"), self.eval_net("G_BA")
        fake_b, fake_a = G_AB(real_a), G_BA(real_b)
        columns = [torch.cat([real_a, real_b]), torch.cat([fake_b, fake_a]), torch.cat([G_BA(fake_b), G_AB(fake_a)])]
        return image_grid([(c + 1) / 2 for c in columns])

    @torch.no_grad()
    def validate(self, batches) -> dict[str, float]:
        """Cycle reconstruction L1 (0..1 pixel units) each way, clean and with N(0, 0.08) on the
        translated image: a reconstruction that only survives without noise was carried by a hidden
        low-amplitude code, not by the visible translation (Chu et al. 2017). Also the checkerboard
        and stripe indices (prism.artifacts) of the A -> B translations over those of their inputs:
        1 = no more grid or stripe than the photos had."""
        acc, noise = Averager(), None
        inputs, fakes = [], []
        for batch in batches:
            real = dict(zip("AB", self._domains(batch)))
            values = {}
            for src, fwd, back in (("A", "G_AB", "G_BA"), ("B", "G_BA", "G_AB")):
                fake = self.eval_net(fwd)(real[src])
                if noise is None:  # a fixed draw, independent of (and not advancing) the training RNG
                    noise = torch.Generator(device=fake.device).manual_seed(0)
                jitter = torch.randn(fake.shape, generator=noise, device=fake.device) * CYCLE_NOISE_STD
                values[f"cycle_l1_{src}"] = _l1_per_image(self.eval_net(back)(fake), real[src])
                values[f"cycle_l1_noisy_{src}"] = _l1_per_image(self.eval_net(back)(fake + jitter), real[src])
                if src == "A":
                    inputs += list((real["A"].float().cpu() + 1) / 2)
                    fakes += list(((fake.float().cpu() + 1) / 2).clamp(0, 1))
            acc.add(values, n=len(real["A"]))
        means = acc.means()
        if inputs:
            before, after = artifact_indices(inputs), artifact_indices(fakes)
            for key in ("checkerboard", "stripe"):
                means[f"{key}_ratio_AtoB"] = after[key] / max(before[key], 1e-8)
        return means

    def card(self) -> dict:
        return {"directions": {"AtoB": "G_AB", "BtoA": "G_BA"}, "train_size": self.cfg["data"]["size"]}

    @classmethod
    def predictor(cls, nets, card):
        return Translator.from_card(nets, card)

    @classmethod
    def evaluate(cls, predictor, data, **kwargs) -> dict:
        from prism.evaluation.translation import evaluate_unpaired_translator
        return evaluate_unpaired_translator(predictor, data, **kwargs)


def _l1_per_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((x - y).abs() / 2).flatten(1).mean(1)  # [-1, 1] differences -> 0..1 pixel units
