"""The colorize task in the service: one options model and one run function."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from prism.serve.tasks import TaskAdapter, register_task


class ColorizeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    saturation: float = Field(1.0, ge=0.0, le=2.0, allow_inf_nan=False,
                              description="Scale of the predicted colour: 0 = gray, 1 = as predicted, 2 = vivid.")


def run_colorize(predictor, images, options: ColorizeOptions):
    # batch_size 4: full-resolution work per image dominates; larger batches only add memory
    return predictor.colorize_batch(images, saturation=options.saturation, batch_size=4)


COLORIZE = register_task(TaskAdapter(
    name="colorize", title="Colorize",
    description="Black-and-white photos in, colour photos out, at full resolution.",
    options=ColorizeOptions, run=run_colorize, result_suffix="colorized"))
