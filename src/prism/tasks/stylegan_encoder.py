"""An inversion encoder for a trained face generator (`task: stylegan_encoder`).

The generator and its discriminator come from a saved stylegan model (`generator:`) and stay
frozen; only the encoder E learns. Each step degrades real faces (one of `loss.degradations`,
random holes for masks), encodes them, renders G(E(x)) and pulls it towards the *clean* face
under the projector's own distance (discriminator features + pixels). Trained that way E answers
the latent whose image is closest on average to what the degradation hid; `prism restore` with
the resulting model starts its projection there instead of at the mean w (see nets/inversion.py).
The saved model holds G, D and E and is used exactly like a stylegan model.
"""
from __future__ import annotations

import random

import torch

from prism.config import ConfigError
from prism.metrics import Averager
from prism.registry import TASKS, build_network
from prism.tasks.base import Phase, Task
from prism.tasks.stylegan import StyleGANTask, face_folder
from prism.train.loggers import image_grid


@TASKS.register("stylegan_encoder")
class StyleGANEncoderTask(Task):
    name = "stylegan_encoder"
    eval_options = StyleGANTask.eval_options
    inference_nets = ("G", "D", "E")
    ema_nets = ("E",)
    best_metric = None  # validation faces are training faces here: the latest is exported
    defaults = {
        "generator": None,        # a saved stylegan model (or run directory): its G and D, frozen
        "data": {"train": None, "val": None, "flip": True, "max_pixels": 80_000_000},
        "nets": {"E": {"arch": "stylegan_encoder", "channels": [32, 64, 128, 128, 256]}},
        "optim": {"E": {"lr": 0.0002, "betas": [0.9, 0.99]}},
        # degradations E learns to invert (the model uses E only for these); holes: random
        # rectangles with sides between hole_min and hole_max of the image. target: what is compared
        # with the clean face, "image" (G(E(x))) or "composite" (the restoration restore() returns:
        # G's image with what the observation knows put back). image is the default: on held-out
        # faces it restored better (docs/restore.md) and a CPU step is ~2.5x cheaper
        "loss": {"degradations": "mask", "factor": 4, "pixel_weight": 1.0, "hole_min": 0.17, "hole_max": 0.62,
                 "target": "image"},
        "train": {"batch_size": 16, "sample_every": 500, "val_every": 1000, "val_batches": 4},
        "align": None,            # None: the generator's (its card); see StyleGANTask
        # the generator's projection defaults, with these on top; encoder_steps / encoder_samples /
        # encoder_spread: the projection's settings when it starts at E's guess (steps, samples and
        # spread stay for the degradations E did not learn)
        "restore": None,
    }

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        from prism.restore.degradations import DEGRADATIONS
        self.degradations = [d.strip() for d in str(cfg["loss"]["degradations"]).split(",") if d.strip()]
        unknown = set(self.degradations) - set(DEGRADATIONS)
        if not self.degradations or unknown:
            raise ConfigError(f"loss.degradations: use a comma-separated subset of {', '.join(DEGRADATIONS)}")
        if cfg["loss"]["target"] not in ("composite", "image"):
            raise ConfigError(f"loss.target must be composite or image, got {cfg['loss']['target']!r}")
        self._generator = None
        if not cfg["nets"].get("G"):  # a new run: take G and D, their specs and options from the model
            self._load_generator()

    def _load_generator(self) -> None:
        from prism.modelio import ModelError, load_nets
        cfg = self.cfg
        if not cfg["generator"]:
            raise ConfigError("generator is not set: give a trained stylegan model, e.g. generator=models/stylegan-faces64-cpu")
        try:
            nets, card = load_nets(cfg["generator"])
        except (ModelError, FileNotFoundError, KeyError) as e:
            raise ConfigError(f"generator={cfg['generator']}: cannot load it ({e})") from None
        if card["task"] != "stylegan" or "D" not in nets:
            raise ConfigError(f"generator={cfg['generator']} is a {card['task']} model; give a stylegan model saved with its D")
        self._generator = nets
        G = nets["G"]
        cfg["nets"]["G"], cfg["nets"]["D"] = dict(card["nets"]["G"]), dict(card["nets"]["D"])
        cfg["nets"]["E"] = {**cfg["nets"]["E"], "resolution": G.resolution, "num_ws": G.num_ws, "w_dim": G.w_dim}
        for key in ("align", "restore"):  # the generator's, with what this config sets on top
            cfg[key] = {**card.get("options", {}).get(key, {}), **(cfg[key] or {})}

    # --- networks and data ---------------------------------------------------------------------
    def build_networks(self):
        from prism.restore.projector import w_statistics
        nets = {n: build_network(self.cfg["nets"][n]) for n in ("G", "D", "E")}
        if self._generator is not None:  # a new run; a resumed one gets all weights from its checkpoint
            for n in ("G", "D"):
                nets[n].load_state_dict(self._generator[n].state_dict())
            nets["E"].set_w_statistics(*w_statistics(nets["G"]))
        for n in ("G", "D"):
            nets[n].eval().requires_grad_(False)
        return nets

    def _folder(self, root, train: bool):
        d = self.cfg["data"]
        return face_folder(root, self.cfg["nets"]["G"]["resolution"], d["flip"] and train, d["max_pixels"])

    def train_dataset(self):
        if not self.cfg["data"]["train"]:
            raise ConfigError("data.train is not set: give the generator's training faces, e.g. data.train=path/to/faces")
        return self._folder(self.cfg["data"]["train"], train=True)

    def val_dataset(self):
        return self._folder(self.cfg["data"]["val"] or self.cfg["data"]["train"], train=False)

    # --- training -----------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        return [Phase("E", "E", self.e_step, frozen=("G", "D"))]

    def _degrade(self, name: str, faces: torch.Tensor, random_holes: bool):
        from prism.restore.degradations import build_degradation
        from prism.restore.evaluate import default_hole
        size = faces.shape[-1]
        hole = self._random_holes(len(faces), size, faces.device) if random_holes else default_hole(size).to(faces.device)
        return build_degradation(name, size, hole, int(self.cfg["loss"]["factor"]))

    def _random_holes(self, count: int, size: int, device) -> torch.Tensor:
        lo, hi = (max(1, int(self.cfg["loss"][k] * size)) for k in ("hole_min", "hole_max"))
        holes = torch.zeros(count, 1, size, size, device=device)
        for hole in holes:
            h, w = random.randint(lo, hi), random.randint(lo, hi)
            y, x = random.randint(0, size - h), random.randint(0, size - w)
            hole[:, y:y + h, x:x + w] = 1
        return holes

    def _render(self, E, op, faces):
        """G(E(degraded faces)) in [0, 1], with G's stored noise maps (deterministic)."""
        ws = E(*op.encoder_input(op(faces), faces.shape[-1]))
        return (self.plain("G").synthesis(ws, noise_mode="const") + 1) / 2

    def e_step(self, batch, state):
        from prism.restore.perceptual import DiscriminatorDistance
        faces = batch["image"]
        op = self._degrade(random.choice(self.degradations), faces, random_holes=True)
        distance = DiscriminatorDistance(self.plain("D"), float(self.cfg["loss"]["pixel_weight"]))
        image = self._render(self.nets["E"], op, faces)
        if self.cfg["loss"]["target"] == "composite":
            image = op.composite(image, op(faces))
        loss = distance(image, distance.prepare(faces)).mean()
        return loss, {"E": loss.detach()}

    # --- pictures and numbers -------------------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self, batch) -> torch.Tensor:
        """Per degradation (the evaluation's hole for masks), columns of: clean faces, degraded
        faces, G(E(degraded)) with what the observation knows put back."""
        faces, E, columns = batch["image"][:4], self.eval_net("E"), []
        for name in self.degradations:
            op = self._degrade(name, faces, random_holes=False)
            observed = op(faces)
            columns += [faces, op.encoder_input(observed, faces.shape[-1])[0], op.composite(self._render(E, op, faces), observed)]
        return image_grid(columns)

    @torch.no_grad()
    def validate(self, batches) -> dict[str, float]:
        """PSNR of the encoder-only restoration (composite of G(E(x))) and of the baseline, per
        degradation, with the evaluation's hole."""
        from torchmetrics.functional.image import peak_signal_noise_ratio
        E, acc = self.eval_net("E"), Averager()
        for batch in batches:
            faces = batch["image"]
            for name in self.degradations:
                op = self._degrade(name, faces, random_holes=False)
                observed = op(faces)
                preds = {"psnr": op.composite(self._render(E, op, faces), observed),
                         "baseline_psnr": op.baseline(observed, faces.shape[-1])}
                acc.add({f"{name}_{k}": peak_signal_noise_ratio(p.clamp(0, 1), faces, data_range=1.0,
                                                                   reduction="none", dim=(1, 2, 3))
                         for k, p in preds.items()}, n=len(faces))
        return acc.means()

    def card(self) -> dict:
        G = self.cfg["nets"]["G"]
        return {"resolution": G["resolution"], "z_dim": G["z_dim"], "w_dim": G["w_dim"],
                "align": dict(self.cfg["align"] or {}), "restore": dict(self.cfg["restore"] or {}),
                "encoder": {"degradations": self.degradations, "generator": str(self.cfg["generator"])}}

    @classmethod
    def predictor(cls, nets, card):
        from prism.restore import FaceGenerator
        return FaceGenerator(nets["G"], nets.get("D"), card, encoder=nets.get("E"))

    evaluate = StyleGANTask.evaluate
