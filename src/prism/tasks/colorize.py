"""Colorization: pix2pix conditional GAN in CIE Lab (L in, ab out).

G* = arg min_G max_D  L_cGAN(G, D) + lambda * L1(G),  lambda = 100 (Isola et al. 2017), with an
optional generator-only L1 pre-training phase first. Inference runs G at a render size and puts
only the predicted chroma, upsampled, onto the photo's own full-resolution lightness.

This file is the template for a new task: defaults, datasets, phases, samples, validation,
card, predictor.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image

from prism import color, metrics
from prism.data.folder import ImageFolder
from prism.data.images import read_image, read_image_bytes, to_float
from prism.losses import AdversarialLoss, PerceptualLoss, feature_matching_loss, reconstruction_loss
from prism.nets.binned_chroma import rebalance_weights
from prism.registry import TASKS
from prism.tasks.base import Phase, Task
from prism.train.loggers import image_grid


@TASKS.register("colorize")
class ColorizeTask(Task):
    name = "colorize"
    best_metric = ("psnr", "max")
    eval_options = ("saturation",)  # `prism eval` options it takes
    defaults = {
        "data": {"train": None, "val": None, "size": 128, "load_size": None, "flip": True,
                 "max_pixels": 80_000_000},
        "nets": {"G": {"arch": "unet", "in_channels": 1, "out_channels": 2, "depth": 7, "width": 32,
                       "norm": "batch", "dropout": 0.5},
                 "D": {"arch": "patchgan", "in_channels": 3, "width": 64, "n_layers": 3, "norm": "batch"}},
        # lr_scale: {param prefix: factor}, e.g. {encoder: 0.2} to fine-tune a pretrained encoder gently
        "optim": {"G": {"lr": 2e-4, "betas": [0.5, 0.999], "lr_scale": None}, "D": {"lr": 2e-4, "betas": [0.5, 0.999]}},
        "loss": {"adversarial": "bce", "gan_weight": 1.0, "recon": "l1", "recon_weight": 100.0,
                 "pretrain_steps": 0, "feature_matching_weight": 0.0, "conditional_d": True,
                 # perceptual_weight: x the EfficientNet-Lite0 feature distance of output and target (RGB)
                 "perceptual_weight": 0.0,
                 "rebalance": 0.5},  # recon binned_ce only: prior/uniform mix of the colour rebalancing
        "render_size": 256,
    }

    # --- data -------------------------------------------------------------------------------------
    def _folder(self, roots, train: bool):
        d = self.cfg["data"]
        return ImageFolder(roots, size=d["size"], load_size=d["load_size"], crop="random" if train else "center",
                           flip=d["flip"] and train, max_pixels=d["max_pixels"])

    def train_dataset(self):
        if not self.cfg["data"]["train"]:
            from prism.config import ConfigError
            raise ConfigError("data.train is not set: give a folder of color photos, e.g. data.train=path/to/photos")
        return self._folder(self.cfg["data"]["train"], train=True)

    def val_dataset(self):
        return self._folder(self.cfg["data"]["val"], train=False) if self.cfg["data"]["val"] else None

    # --- training -----------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        loss = self.cfg["loss"]
        if loss["recon"] == "binned_ce" and not hasattr(self.plain("G"), "decode"):
            from prism.config import ConfigError
            raise ConfigError("loss.recon=binned_ce needs a binned_chroma generator: "
                              "nets.G={arch: binned_chroma, backbone: {arch: unet, ...}}")
        if loss["perceptual_weight"] > 0 and loss["recon"] == "binned_ce" and not ("D" in self.nets and loss["gan_weight"] > 0):
            from prism.config import ConfigError
            raise ConfigError("loss.perceptual_weight needs G's colours, which a binned_chroma G trained "
                              "without a discriminator never decodes: add nets.D or set perceptual_weight 0")
        self.adv = AdversarialLoss(loss["adversarial"])
        pre = loss["pretrain_steps"]
        phases = [Phase("G_pretrain", "G", self.g_pretrain_step, stop=pre)] if pre else []
        if "D" in self.nets and loss["gan_weight"] > 0:
            phases += [Phase("D", "D", self.d_step, start=pre), Phase("G", "G", self.g_step, frozen=("D",), start=pre)]
        else:  # regression only
            phases.append(Phase("G", "G", self.g_pretrain_step, start=pre))
        return phases

    def inputs_and_targets(self, batch: dict, state: dict):
        """(generator input, target) in the networks' range, computed once per step. The GAN
        steps below only use this pair, so a paired task (pix2pix) reuses them by overriding it."""
        if "L" not in state:
            state["L"], state["ab"] = color.rgb_to_lab_norm(batch["image"])
        return state["L"], state["ab"]

    def _d_input(self, L, ab):
        return torch.cat([L, ab], 1) if self.cfg["loss"]["conditional_d"] else ab

    def generate(self, L, state):
        """G's ab, once per step; a binned-chroma G also leaves its logits for the loss."""
        if "fake" not in state:
            if self.cfg["loss"]["recon"] == "binned_ce":
                state["logits"] = self.nets["G"](L, return_logits=True)
                # decoded ab only feeds a discriminator; regression-only training skips the softmax
                state["fake"] = self.plain("G").decode(state["logits"]) if "D" in self.nets else None
            else:
                state["fake"] = self.nets["G"](L)
        return state["fake"]

    def recon_loss(self, ab, state):
        w = self.cfg["loss"]
        if w["recon"] != "binned_ce":
            return reconstruction_loss(w["recon"], state["fake"], ab)
        G = self.plain("G")
        counts = G.bin_counts(ab).cpu()  # the colour prior, accumulated over all training batches
        self.chroma_counts = counts if getattr(self, "chroma_counts", None) is None else self.chroma_counts + counts
        return G.loss(state["logits"], ab, rebalance_weights(self.chroma_counts, G.grid, w["rebalance"]))

    def to_rgb(self, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        """G's output as RGB in [0, 1] (here: the input lightness with the predicted chroma)."""
        return color.lab_norm_to_rgb(inputs, outputs)

    def generator_losses(self, inputs, target, state) -> tuple[torch.Tensor, dict]:
        """recon_weight x reconstruction (+ perceptual_weight x feature distance in RGB): the
        generator's non-adversarial terms, in both the pre-training and the GAN phase."""
        w = self.cfg["loss"]
        rec = self.recon_loss(target, state)
        total, logs = w["recon_weight"] * rec, {"G_recon": rec.detach()}
        if w["perceptual_weight"] > 0:
            perceptual = self.frozen_module("perceptual", PerceptualLoss, state["fake"].device)
            perc = perceptual(self.to_rgb(inputs, state["fake"]).float(), self.to_rgb(inputs, target).float())
            total, logs["G_perceptual"] = total + w["perceptual_weight"] * perc, perc.detach()
        return total, logs

    def state_dict(self) -> dict:
        counts = getattr(self, "chroma_counts", None)
        return {} if counts is None else {"chroma_counts": counts}

    def load_state_dict(self, state: dict) -> None:
        self.chroma_counts = state.get("chroma_counts")

    def g_pretrain_step(self, batch, state):
        L, ab = self.inputs_and_targets(batch, state)
        self.generate(L, state)
        return self.generator_losses(L, ab, state)

    def d_step(self, batch, state):
        L, ab = self.inputs_and_targets(batch, state)
        fake = self.generate(L, state)
        loss = self.adv.d_loss(self.nets["D"](self._d_input(L, ab)), self.nets["D"](self._d_input(L, fake.detach())))
        return loss, {"D": loss.detach()}

    def g_step(self, batch, state):
        L, ab = self.inputs_and_targets(batch, state)
        fake, w = state["fake"], self.cfg["loss"]
        fm = w["feature_matching_weight"] > 0
        out = self.nets["D"](self._d_input(L, fake), return_features=fm)
        gan = self.adv.g_loss(out[0] if fm else out)
        total, logs = self.generator_losses(L, ab, state)
        total, logs = w["gan_weight"] * gan + total, {"G_gan": gan.detach(), **logs}
        if fm:
            with torch.no_grad():
                _, real_feats = self.nets["D"](self._d_input(L, ab), return_features=True)
            feat = feature_matching_loss(out[1], real_feats)
            total = total + w["feature_matching_weight"] * feat
            logs["G_feat"] = feat.detach()
        return total, logs

    # --- pictures and numbers during training ----------------------------------------------------------
    @torch.no_grad()
    def _predict(self, batch):
        L, ab = color.rgb_to_lab_norm(batch["image"])
        return L, color.lab_norm_to_rgb(L, self.eval_net("G")(L))

    @torch.no_grad()
    def sample_grid(self, batch) -> torch.Tensor:
        L, out = self._predict(batch)
        gray = color.lab_norm_to_rgb(L, torch.zeros(L.shape[0], 2, *L.shape[2:], device=L.device))
        return image_grid([gray, out, batch["image"]])

    @torch.no_grad()
    def validate(self, batches) -> dict[str, float]:
        """The eval protocol (prism.evaluation.evaluate_colorizer) on the val crops: colourless truths
        left out and counted."""
        score, left_out = metrics.ColorizationScore(), 0
        for batch in batches:
            L, out = self._predict(batch)
            gray = color.lab_norm_to_rgb(L, torch.zeros_like(out[:, :2]))
            for pred, truth, g in zip(out.cpu(), batch["image"].cpu(), gray.cpu()):
                if metrics.colourless_reason(truth, g):
                    left_out += 1
                else:
                    score.add(pred, truth)
        return {**score.summary(), "left_out": float(left_out)}

    def card(self) -> dict:
        return {"render_size": self.cfg["render_size"], "train_size": self.cfg["data"]["size"]}

    @classmethod
    def predictor(cls, nets, card):
        return Colorizer(nets["G"], card)

    @classmethod
    def evaluate(cls, predictor, data, **kwargs) -> dict:
        from prism.evaluation import evaluate_colorizer
        return evaluate_colorizer(predictor, data, **kwargs)


class Colorizer:
    """`prism.load_model()` for colorization models: `.colorize(image)` -> PIL image, full size."""

    task = "colorize"

    def __init__(self, G: torch.nn.Module, card: dict):
        self.G, self.card = G.eval(), card
        self.render_size = int(card.get("options", {}).get("render_size", 256))
        # A regression model predicts the mean of plausible colours, which is duller than any one of
        # them; the card may carry a chroma gain calibrated on training photos. `saturation` scales on top.
        self.chroma_gain = float(card.get("options", {}).get("chroma_gain", 1.0))
        self.multiple = getattr(G, "size_multiple", 1)
        self.device = getattr(G, "device", None) or next(G.parameters()).device

    def speedups(self, channels_last: bool = True, compile: bool = False) -> "Colorizer":
        """Channels-last memory layout (faster convolutions on CPU and tensor cores) and, optionally,
        torch.compile (slow first call). Outputs are unchanged up to float rounding."""
        if channels_last and isinstance(self.G, torch.nn.Module):
            self.G = self.G.to(memory_format=torch.channels_last)
            self.channels_last = True
        if compile and isinstance(self.G, torch.nn.Module):
            multiple = self.multiple
            self.G = torch.compile(self.G, dynamic=True)
            self.multiple = multiple
        return self

    def colorize(self, image, saturation: float = 1.0) -> Image.Image:
        """PIL image, numpy array or file path (gray, RGB, RGBA, palette, 16-bit) -> colorized PIL
        image of the same size; colour input is re-colorized from its lightness, alpha is kept."""
        return self.colorize_batch([image], saturation)[0]

    @torch.no_grad()
    def colorize_batch(self, images, saturation: float = 1.0, batch_size: int = 8) -> list[Image.Image]:
        if not 0.0 <= saturation <= 2.0:
            raise ValueError(f"saturation must be within 0..2, got {saturation}")
        loaded = [read_image(x) if isinstance(x, str) or hasattr(x, "__fspath__") else
                  read_image_bytes(x) if isinstance(x, bytes) else to_float(x) for x in images]
        Ls = [color.lightness_full(im.pixels) for im in loaded]
        small = [self._render_input(L) for L in Ls]
        abs_ = [None] * len(loaded)
        by_shape: dict[tuple, list[int]] = {}
        for i, (x, _) in enumerate(small):
            by_shape.setdefault(tuple(x.shape), []).append(i)
        for idxs in by_shape.values():
            for k in range(0, len(idxs), batch_size):
                chunk = idxs[k:k + batch_size]
                x = torch.stack([small[i][0] for i in chunk]).to(self.device)
                if getattr(self, "channels_last", False):
                    x = x.contiguous(memory_format=torch.channels_last)
                ab = self.G(x).float().cpu()
                for j, i in enumerate(chunk):
                    h, w = small[i][1]
                    abs_[i] = ab[j:j + 1, :, :h, :w]
        out = []
        for im, L, ab in zip(loaded, Ls, abs_):
            rgb = Image.fromarray(color.compose_full(L, ab[0] * (saturation * self.chroma_gain)))
            if im.alpha is not None:
                rgb.putalpha(Image.fromarray((im.alpha * 255 + 0.5).astype("uint8")))
            out.append(rgb)
        return out

    def _render_input(self, L: torch.Tensor):
        """Full-res L -> (1,h',w') network input at the render size, padded to the net's multiple."""
        H, W = L.shape
        s = self.render_size / max(H, W)
        h, w = max(1, round(H * s)), max(1, round(W * s))
        x = F.interpolate(L[None, None], size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:  # reflect where the image is big enough, replicate otherwise
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        return x[0], (h, w)
