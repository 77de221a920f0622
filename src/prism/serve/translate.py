"""Translation models (CycleGAN photo <-> painting, pix2pix A -> B) in the service: one options
model and one run function, registered under both training tasks' names (a predictor's `.task`)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from prism.serve.tasks import TaskAdapter, register_task


class TranslateOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    direction: Optional[Literal["AtoB", "BtoA"]] = Field(
        None, description="AtoB (e.g. photo -> Monet) or BtoA; default: the model's first direction.")


def run_translate(predictor, images, options: TranslateOptions):
    return predictor.translate_batch(images, direction=options.direction, batch_size=4)


for _task, _title in (("cyclegan", "Translate (CycleGAN)"), ("pix2pix", "Translate (pix2pix)")):
    register_task(TaskAdapter(
        name=_task, title=_title, description="Images in, translated images out, at their full size.",
        options=TranslateOptions, run=run_translate, result_suffix="translated"))
