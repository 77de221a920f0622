"""Paired translation (pix2pix, Isola et al. 2017) on side-by-side A|B images, and the `Translator`
predictor every RGB -> RGB translation model (pix2pix, CycleGAN, imported CycleGAN) loads as.

The objective is the colorizer's exactly (conditional PatchGAN on cat(input, output), L1 x 100,
optional L1-only warm-up and feature matching), only with RGB in and RGB out instead of Lab
L -> ab. So the task reuses ColorizeTask's phases and steps and supplies its (input, target) pair
through ColorizeTask's `inputs_and_targets` hook; data, samples, validation and the predictor are its own.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from PIL import Image
from torch.utils.data import Dataset

from prism.data.folder import ImageFolder
from prism.data.images import DEFAULT_MAX_PIXELS, float_to_pil, read_image, to_float
from prism.nets.common import pad_for
from prism.registry import TASKS
from prism.tasks.colorize import ColorizeTask
from prism.train.loggers import image_grid

DIRECTIONS = ("AtoB", "BtoA")


class PairedHalves(Dataset):
    """A|B side-by-side pair images -> {"A", "B": (3,H,W) in [0, 1], "path", "skipped"}.

    Two ImageFolders over the same files, one keeping the left half, one the right, read with the
    same (index, seed) key: they draw the same crop and flip, so A and B stay pixel-aligned.
    """

    def __init__(self, roots, size: int | None = 256, load_size: int | None = None, crop: str = "random",
                 flip: bool = True, max_pixels: int = DEFAULT_MAX_PIXELS):
        kwargs = dict(size=size, load_size=load_size, crop=crop, flip=flip, max_pixels=max_pixels)
        self.left, self.right = ImageFolder(roots, split="left", **kwargs), ImageFolder(roots, split="right", **kwargs)

    def __len__(self) -> int:
        return len(self.left)

    def __getitem__(self, key) -> dict:
        a, b = self.left[key], self.right[key]
        return {"A": a["image"], "B": b["image"], "path": a["path"], "skipped": a["skipped"]}  # same files skipped


@TASKS.register("pix2pix")
class Pix2PixTask(ColorizeTask):
    name = "pix2pix"
    # PSNR favours the blurry early checkpoints of a GAN; export the latest unless
    # train.best_metric (l1 / psnr / ssim, with train.best_mode) says otherwise.
    best_metric = None
    eval_options = ("real", "inception_weights", "direction")  # `prism eval` options it takes
    defaults = {
        "data": {"train": None, "val": None, "direction": "AtoB", "size": 256, "load_size": 286, "flip": True,
                 "max_pixels": DEFAULT_MAX_PIXELS},
        "nets": {"G": {"arch": "unet", "in_channels": 3, "out_channels": 3, "depth": 8, "width": 64,
                       "norm": "batch", "dropout": 0.5},
                 "D": {"arch": "patchgan", "in_channels": 6, "width": 64, "n_layers": 3, "norm": "batch"}},
        "optim": {"G": {"lr": 2e-4, "betas": [0.5, 0.999]}, "D": {"lr": 2e-4, "betas": [0.5, 0.999]}},
        "loss": {"adversarial": "bce", "gan_weight": 1.0, "recon": "l1", "recon_weight": 100.0,
                 "pretrain_steps": 0, "feature_matching_weight": 0.0, "conditional_d": True, "perceptual_weight": 0.0},
    }

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        if cfg["data"]["direction"] not in DIRECTIONS:
            from prism.config import ConfigError
            raise ConfigError(f"data.direction must be AtoB or BtoA, got {cfg['data']['direction']!r}")

    # --- data -------------------------------------------------------------------------------------
    def _folder(self, roots, train: bool):
        d = self.cfg["data"]
        return PairedHalves(roots, size=d["size"], load_size=d["load_size"] if train else None,
                            crop="random" if train else "center", flip=d["flip"] and train, max_pixels=d["max_pixels"])

    def train_dataset(self):
        if not self.cfg["data"]["train"]:
            from prism.config import ConfigError
            raise ConfigError("data.train is not set: give a folder of A|B side-by-side pair images")
        return self._folder(self.cfg["data"]["train"], train=True)

    def inputs_and_targets(self, batch: dict, state: dict):
        """The two halves, in the networks' [-1, 1]."""
        source, target = ("A", "B") if self.cfg["data"]["direction"] == "AtoB" else ("B", "A")
        return batch[source] * 2 - 1, batch[target] * 2 - 1

    def to_rgb(self, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        return (outputs + 1) / 2

    # --- pictures and numbers during training ----------------------------------------------------------
    @torch.no_grad()
    def _predict(self, batch):
        x, y = self.inputs_and_targets(batch, {})
        return (x + 1) / 2, (self.eval_net("G")(x) + 1) / 2, (y + 1) / 2

    @torch.no_grad()
    def sample_grid(self, batch) -> torch.Tensor:
        return image_grid(list(self._predict(batch)))  # input | output | target

    @torch.no_grad()
    def validate(self, batches) -> dict[str, float]:
        from prism.metrics import Averager, paired_metrics
        acc = Averager()
        for batch in batches:
            _, out, target = self._predict(batch)
            acc.add(paired_metrics(out, target), n=len(out))
        return acc.means()

    def card(self) -> dict:
        return {"directions": {self.cfg["data"]["direction"]: "G"}, "train_size": self.cfg["data"]["size"]}

    @classmethod
    def predictor(cls, nets, card):
        return Translator.from_card(nets, card)

    @classmethod
    def evaluate(cls, predictor, data, **kwargs) -> dict:
        from prism.evaluation.translation import evaluate_paired_translator
        return evaluate_paired_translator(predictor, data, **kwargs)


class Translator:
    """`prism.load_model()` for RGB -> RGB translation models: `.translate(image, direction)` -> PIL
    image of the input's own size (padded by reflection to what the network needs, then cropped
    back). Input: PIL image, numpy array, LoadedImage or file path; gray is read as RGB, alpha kept."""

    def __init__(self, generators: dict[str, nn.Module], card: dict):
        if not generators:
            raise ValueError("a Translator needs at least one generator")
        self.generators = {d: g.eval() for d, g in generators.items()}
        self.card, self.task = card, card["task"]
        first = next(iter(generators.values()))
        self.device = getattr(first, "device", None) or next(first.parameters()).device

    @classmethod
    def from_card(cls, nets: dict[str, nn.Module], card: dict) -> "Translator":
        """The card's options.directions maps "AtoB"/"BtoA" to the network that translates that way."""
        directions = card.get("options", {}).get("directions", {})
        return cls({d: nets[n] for d, n in directions.items() if n in nets}, card)

    @property
    def directions(self) -> list[str]:
        return list(self.generators)

    def translate(self, image, direction: str | None = None) -> Image.Image:
        return self.translate_batch([image], direction)[0]

    @torch.no_grad()
    def translate_batch(self, images, direction: str | None = None, batch_size: int = 8) -> list[Image.Image]:
        G = self.generator(direction)
        loaded = [read_image(x) if isinstance(x, str) or hasattr(x, "__fspath__") else to_float(x) for x in images]
        inputs = [pad_for(G, torch.from_numpy(im.rgb).permute(2, 0, 1) * 2 - 1) for im in loaded]
        outputs: list = [None] * len(loaded)
        by_shape: dict[tuple, list[int]] = {}  # one forward pass per shape: no resizing to batch
        for i, (x, _) in enumerate(inputs):
            by_shape.setdefault(tuple(x.shape), []).append(i)
        for idxs in by_shape.values():
            for k in range(0, len(idxs), batch_size):
                chunk = idxs[k:k + batch_size]
                y = G(torch.stack([inputs[i][0] for i in chunk]).to(self.device)).float().cpu()
                for j, i in enumerate(chunk):
                    h, w = inputs[i][1]
                    outputs[i] = ((y[j, :, :h, :w] + 1) / 2).permute(1, 2, 0).numpy()
        return [float_to_pil(out, im.alpha) for out, im in zip(outputs, loaded)]

    def generator(self, direction: str | None) -> nn.Module:
        if direction is None:  # the model's own direction: AtoB when it has one
            direction = "AtoB" if "AtoB" in self.generators else self.directions[0]
        if direction not in self.generators:
            raise ValueError(f"this {self.task} model translates {' and '.join(self.directions)} only, "
                             f"not {direction!r}")
        return self.generators[direction]
