"""Face restoration by GAN inversion (`prism restore`, stylegan models) in the service, as a job.

A projection takes hundreds of optimizer steps, that is tens of seconds to minutes. So POST
/v1/restore answers 202 with a job to poll (jobs.py). The job's progress comes from
FaceGenerator.restore's per-step callback. For each photo, the results are the restored face
(<stem>-restored.png), the projected latent w (<stem>-w.npy) and G(w) itself (<stem>-projection.png).
"""
from __future__ import annotations

import io
from typing import Literal, Optional

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from prism.data.images import LoadedImage, float_to_pil
from prism.restore.align import AlignmentUnavailable, FaceNotFound
from prism.serve import uploads as U
from prism.serve.errors import ServeError
from prism.serve.tasks import TaskAdapter, register_task

RECT_PATTERN = r"^\s*\d+\s*,\s*\d+\s*,\s*\d+\s*,\s*\d+\s*$"


class RestoreOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    degradation: Literal["gray", "mask", "downsample", "gray+mask", "none"] = Field(
        "gray", description="What happened to the photo: gray (colour lost), mask (a hole: send rect or a mask "
                            "image), downsample (low resolution), gray+mask, or none (plain projection).")
    steps: Optional[int] = Field(None, ge=1, le=2000, description="Projection steps: more fit the photo closer and "
                                 "take longer; default: the model's (its card's measured value, else 300).")
    rect: Optional[str] = Field(None, pattern=RECT_PATTERN, description=(
        "mask degradation: the missing rectangle x,y,w,h in the photo's pixels (or send a mask image)."))
    factor: int = Field(4, ge=2, le=16, description="downsample degradation: the reduction factor. It must "
                                                    "divide the model's resolution.")
    align: bool = Field(True, description="Find the face (dlib) and cut it like the training faces. Turn it off "
                                          "for a photo that is already a face crop framed like them.")
    space: Literal["w+", "w"] = Field("w+", description="w+: one latent per layer (closer fits); w: one for all.")
    seed: int = Field(0, ge=0, lt=2**32, description="Seed of the projection's noise.")
    samples: Optional[int] = Field(None, ge=1, le=64, description="Independent projections; the restoration is "
                                   "built from their mean (closer on average, smoother). Time grows with it. "
                                   "Default: the model's (else 1).")
    # no `spread` here: the web form sends an emptied number box as 0, a valid spread, which would
    # silently replace the model card's measured value; Python and the CLI take it

    @field_validator("rect", mode="before")
    @classmethod
    def _blank_rect_is_none(cls, value):
        return None if isinstance(value, str) and not value.strip() else value  # an empty text box or form field

    @model_validator(mode="after")
    def _mask_needs_a_hole(self, info: ValidationInfo):
        # the service passes which extra images came with the request; without that context (plain
        # Python use) the check waits for the run, which says the same
        sent = (info.context or {}).get("extra_images")
        if "mask" in self.degradation and self.rect is None and sent is not None and "mask" not in sent:
            raise ValueError("the mask degradation needs a hole: send a mask image (field mask, white = missing) "
                             "or rect=x,y,w,h")
        return self


def run_restore(generator, images: list[LoadedImage], options: RestoreOptions, job) -> list[Image.Image]:
    """Restore each photo in turn; `job` (a JobContext) gets the progress over all of them."""
    rect = tuple(int(v) for v in options.rect.split(",")) if options.rect else None
    mask = _mask_image(job.extras["mask"]) if "mask" in job.extras else None
    steps = options.steps or generator.projection_defaults(options.degradation)["steps"]
    total, out = steps * len(images), []
    for i, image in enumerate(images):
        name, done = job.names[i], i * steps
        stage = f"{name} ({i + 1} of {len(images)})" if len(images) > 1 else name
        job.progress(done, total, stage=stage)  # before the start too: alignment takes a moment

        def on_step(step: int, loss: float, distance: float, done=done, stage=stage) -> None:
            job.progress(done + step + 1, total, loss=loss, stage=stage)
        try:
            result = generator.restore(float_to_pil(image.rgb), degradation=options.degradation, steps=steps,
                                       mask=mask, rect=rect, factor=options.factor, align=options.align,
                                       space=options.space, seed=options.seed, samples=options.samples,
                                       on_step=on_step)
        except FaceNotFound:
            raise ServeError(422, "no_face", f"{name}: no face found. For a photo that is already a face crop "
                                             "framed like the model's training faces, send align=false.") from None
        except AlignmentUnavailable:
            raise ServeError(501, "alignment_unavailable", f"{name}: face alignment is not installed on this server "
                                                           "(it needs dlib-bin and face-recognition-models); send "
                                                           "align=false with an already aligned face crop.") from None
        except ValueError as e:  # a rectangle outside the photo, a factor that does not divide, an empty mask
            raise ServeError(422, "invalid_options", f"{name}: {e}") from None
        out.append(result.restored)
        job.attach(i, "w.npy", "application/octet-stream", _npy(result.w))
        job.attach(i, "projection.png", "image/png", U.encode(result.projection, "png"))
        if result.uncertainty is not None:
            job.attach(i, "uncertainty.png", "image/png", U.encode(result.uncertainty, "png"))
        job.before[i] = result.observed  # the degraded face the projection saw, at the model's resolution
    return out


def _mask_image(mask: LoadedImage) -> Image.Image:
    """The decoded mask upload as one "L" image: its alpha channel if it has one (opaque = missing),
    else its gray levels (white = missing), as `prism restore --mask` reads a file."""
    if mask.alpha is not None:
        return Image.fromarray(np.rint(mask.alpha * 255).astype(np.uint8), "L")
    return float_to_pil(mask.rgb).convert("L")


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


RESTORE = register_task(TaskAdapter(
    name="restore", task="stylegan", title="Restore (StyleGAN)",
    description="Degraded face photos in (gray, with a hole, low resolution), restored faces at the model's "
                "resolution out, by projection into the generator's latent space. Runs as a job: minutes on a CPU.",
    options=RestoreOptions, run=run_restore, result_suffix="restored", job=True,
    extra_images={"mask": "mask degradation: an image of the photo's size (stretched otherwise), white or opaque = "
                          "missing pixels; instead of rect."}))
