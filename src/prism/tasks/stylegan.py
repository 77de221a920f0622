"""Unconditional face generation: StyleGAN2 (Karras et al. 2020), the prior behind `prism restore`.

Losses: non-saturating logistic, softplus(-D(G(z))) for G and softplus(D(G(z))) + softplus(-D(x))
for D, with R1 = gamma/2 * E||grad_x D(x)||^2 on reals, evaluated lazily every `r1_every` steps
and scaled up by that interval (same expected gradient at 1/16 of the cost). Adam's lr and betas of
the regularised optimiser are adjusted for the extra steps as in the paper (c = k / (k + 1)).
Options: style mixing probability, DiffAugment on every D input (small data sets), G EMA via the
trainer's train.ema. Path-length regularisation is not implemented (see docs/restore.md).

One G forward per step: the D phase generates the fakes with their graph, the G phase reuses
them (G has not changed in between, only D).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from prism.config import ConfigError
from prism.data.folder import ImageFolder
from prism.losses import input_gradients
from prism.metrics import Averager
from prism.registry import TASKS
from prism.restore.projector import card_fallbacks
from prism.tasks.base import Phase, Task
from prism.tasks.cyclegan import DIFF_AUGMENT, diff_augment
from prism.train.loggers import image_grid

SAMPLE_SEED = 1234  # the fixed z of sample grids and validation, independent of the training RNG


@TASKS.register("stylegan")
class StyleGANTask(Task):
    name = "stylegan"
    eval_options = ("seed", "steps", "samples", "spread")  # `prism eval` options it takes
    # D is saved too: its features are the restorer's offline perceptual distance; only G is averaged.
    inference_nets = ("G", "D")
    ema_nets = ("G",)
    best_metric = None  # no pretrained metric judges a generator here: the latest is exported
    defaults = {
        "data": {"train": None, "val": None, "size": 256, "flip": True, "max_pixels": 80_000_000},
        "nets": {"G": {"arch": "stylegan2_generator", "resolution": 256, "z_dim": 512, "w_dim": 512,
                       "mapping_layers": 8, "channel_base": 16384, "channel_max": 512},
                 "D": {"arch": "stylegan2_discriminator", "resolution": 256, "channel_base": 16384,
                       "channel_max": 512}},
        "optim": {"G": {"lr": 0.0025, "betas": [0.0, 0.99]}, "D": {"lr": 0.0025, "betas": [0.0, 0.99]}},
        "loss": {"r1_gamma": 1.0, "r1_every": 16, "style_mixing": 0.9, "diffaugment": ""},
        "train": {"batch_size": 16, "ema": 0.998, "sample_every": 500, "val_every": 1000, "val_batches": 4},
        "sample": {"count": 16, "psi": 1.0},
        # How the training faces are framed relative to FFHQ alignment (prism.restore.align): photos
        # to restore are cut the same way. FFHQ / CelebA-HQ: 1.0, 0.0; UTKFace's crops: 1.58, 0.16.
        "align": {"zoom": 1.0, "shift_y": 0.0},
        # Default projection of `prism restore` / `prism eval` with this model (kept in its card): the
        # best number of steps depends on the generator (a small one fills holes and colours better
        # when stopped early), so a preset records what held-out faces said for its model.
        "restore": card_fallbacks(),  # steps, samples, spread
    }

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        loss = cfg["loss"]
        unknown = {p.strip() for p in loss["diffaugment"].split(",") if p.strip()} - set(DIFF_AUGMENT)
        if unknown:
            raise ConfigError(f"loss.diffaugment: unknown policy {', '.join(sorted(unknown))}; "
                              f"use a comma-separated subset of {', '.join(DIFF_AUGMENT)}")
        if int(loss["r1_every"]) < 1:
            raise ConfigError("loss.r1_every must be >= 1 (1 = R1 on every step, no lazy regularisation)")
        g, d = cfg["nets"]["G"]["resolution"], cfg["nets"]["D"]["resolution"]
        if not g == d == cfg["data"]["size"]:
            raise ConfigError(f"nets.G.resolution ({g}), nets.D.resolution ({d}) and data.size "
                              f"({cfg['data']['size']}) must be equal")

    # --- data -------------------------------------------------------------------------------------
    def _folder(self, root, train: bool) -> ImageFolder:
        d = self.cfg["data"]
        return face_folder(root, d["size"], d["flip"] and train, d["max_pixels"])

    def train_dataset(self):
        if not self.cfg["data"]["train"]:
            raise ConfigError("data.train is not set: give a folder of aligned faces, e.g. data.train=path/to/faces")
        return self._folder(self.cfg["data"]["train"], train=True)

    def val_dataset(self):
        """Real images for the validation statistics: data.val, else the training folder (a GAN
        has no held-out loss; the statistics compare distributions)."""
        return self._folder(self.cfg["data"]["val"] or self.cfg["data"]["train"], train=False)

    # --- optimisers ---------------------------------------------------------------------------------
    def build_optimizers(self, nets):
        """Lazy R1 takes an extra D step every k steps: lr * c and betas ** c with c = k / (k + 1)
        keep Adam's effective averaging horizon as without the extra steps (stylegan2 appendix)."""
        opts = super().build_optimizers(nets)
        every = int(self.cfg["loss"]["r1_every"])
        if "D" in opts and every > 1 and self.cfg["loss"]["r1_gamma"] > 0:
            c = every / (every + 1)
            for group in opts["D"].param_groups:
                group["lr"] *= c
                group["betas"] = tuple(b ** c for b in group["betas"])
        return opts

    # --- training ----------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        loss = self.cfg["loss"]
        phases = [Phase("D", "D", self.d_step), Phase("G", "G", self.g_step, frozen=("D",))]
        if loss["r1_gamma"] > 0:
            phases.append(Phase("D_r1", "D", self.r1_step, every=int(loss["r1_every"])))
        return phases

    def _d(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets["D"](diff_augment(x, self.cfg["loss"]["diffaugment"]))

    @staticmethod
    def reals(batch: dict) -> torch.Tensor:
        return batch["image"] * 2 - 1  # the networks work in [-1, 1]

    def d_step(self, batch, state):
        reals = self.reals(batch)
        z = torch.randn(reals.shape[0], self.plain("G").z_dim, device=reals.device)
        state["fake"] = fake = self.nets["G"](z, mixing_prob=self.cfg["loss"]["style_mixing"])
        real_logits, fake_logits = self._d(reals), self._d(fake.detach())
        loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        return loss, {"D": loss.detach(), "D_real": real_logits.mean().detach(), "D_fake": fake_logits.mean().detach()}

    def g_step(self, batch, state):
        loss = F.softplus(-self._d(state["fake"])).mean()
        return loss, {"G": loss.detach()}

    def r1_step(self, batch, state):
        every = int(self.cfg["loss"]["r1_every"])
        reals, D = self.reals(batch), self.nets["D"]
        ddp = getattr(D, "_forward_module", None)  # Fabric's wrapper around DDP on several processes
        if not isinstance(ddp, torch.nn.parallel.DistributedDataParallel):
            penalty = r1_penalty(D, reals, self.cfg["loss"]["diffaugment"])
            loss = penalty.mean() * (self.cfg["loss"]["r1_gamma"] / 2) * every
            return loss, {"R1": penalty.mean().detach()}
        # DDP cannot reduce R1 itself: the penalty's double backward gives some of D's parameters
        # (e.g. its last biases) no gradient, and DDP then waits for them forever ("Expected to have
        # finished reduction in the prior iteration"). So the penalty's forward runs without DDP's
        # sync, and one synced forward times 0 gives every parameter a gradient in this backward:
        # DDP all-reduces them all, R1's included (the lazy-regularisation trick of stylegan2-ada).
        with ddp.no_sync():
            penalty = r1_penalty(D, reals, self.cfg["loss"]["diffaugment"])
        loss = penalty.mean() * (self.cfg["loss"]["r1_gamma"] / 2) * every
        return loss + 0.0 * D(reals.detach()).float().sum(), {"R1": penalty.mean().detach()}

    # --- pictures and numbers during training ---------------------------------------------------------
    def _fixed_z(self, count: int, device) -> torch.Tensor:
        gen = torch.Generator().manual_seed(SAMPLE_SEED)
        return torch.randn(count, self.plain("G").z_dim, generator=gen).to(device)

    @torch.no_grad()
    def sample_grid(self, batch) -> torch.Tensor:
        """4 real faces in the first column, then 4 columns of faces from fixed z (stored noise)."""
        s = self.cfg["sample"]
        reals = batch["image"][:4]
        G = self.eval_net("G")
        z = self._fixed_z(max(4, s["count"] // 4 * 4), reals.device)
        fakes = ((G(z, truncation_psi=s["psi"], noise_mode="const") + 1) / 2).clamp(0, 1)
        n = min(len(reals), 4)
        return image_grid([reals[:n]] + [fakes[i:i + n] for i in range(0, len(fakes) - n + 1, n)])

    @torch.no_grad()
    def validate(self, batches) -> dict[str, float]:
        """Cheap distribution checks, no pretrained network: gaps between the per-channel means and
        standard deviations of real and generated pixels, the mean D logits of both, and the
        diversity of fakes (mean pairwise L1 within a batch; near 0 = mode collapse)."""
        G, D = self.eval_net("G"), self.plain("D")
        acc, offset = Averager(), 0
        for batch in batches:
            reals = self.reals(batch)
            z = self._fixed_z(offset + len(reals), reals.device)[offset:]
            offset += len(reals)
            fakes = G(z, noise_mode="const")
            values = {"mean_gap": (reals.mean((0, 2, 3)) - fakes.mean((0, 2, 3))).abs().mean() / 2,
                      "std_gap": (reals.std((0, 2, 3)) - fakes.std((0, 2, 3))).abs().mean() / 2,
                      "d_real": D(reals).mean(), "d_fake": D(fakes).mean(),
                      "fake_diversity": torch.cdist(fakes.flatten(1), fakes.flatten(1), p=1).mean() / (2 * fakes[0].numel())}
            acc.add({k: v * len(reals) for k, v in values.items()}, n=len(reals))  # batch-level values
        return acc.means()

    def card(self) -> dict:
        G = self.cfg["nets"]["G"]
        return {"resolution": G["resolution"], "z_dim": G["z_dim"], "w_dim": G["w_dim"],
                "train_size": self.cfg["data"]["size"], "align": dict(self.cfg["align"]),
                "restore": dict(self.cfg["restore"])}

    @classmethod
    def predictor(cls, nets, card):
        from prism.restore import FaceGenerator
        return FaceGenerator(nets["G"], nets.get("D"), card)

    @classmethod
    def evaluate(cls, predictor, data, **kwargs) -> dict:
        from prism.restore.evaluate import evaluate_restoration
        return evaluate_restoration(predictor, data, **kwargs)


def face_folder(root, size: int, flip: bool, max_pixels: int) -> ImageFolder:
    """Aligned faces: the short side resized to `size` and the centre kept, so the alignment is
    never cropped away (a random crop would move the eyes around)."""
    return ImageFolder(root, size=size, load_size=size, crop="center", flip=flip, max_pixels=max_pixels)


def r1_penalty(D, reals: torch.Tensor, diffaugment: str = "") -> torch.Tensor:
    """||grad_x D(aug(x))||^2 per real image, with the graph kept so the penalty can be trained on
    (the gradient is taken at the un-augmented image, as stylegan2-ada does)."""
    reals = reals.detach().requires_grad_(True)
    grad = input_gradients(D(diff_augment(reals, diffaugment)), reals)
    return grad.to(torch.promote_types(grad.dtype, torch.float32)).square().sum(dim=(1, 2, 3))  # half -> float
