"""Label maps with their photos as training data: the config section, class table, datasets and
model-card entries shared by the tasks that read them (oasis: label map -> photo; segment:
photo -> label map), so both read every label format the same way."""
from __future__ import annotations

from prism.config import ConfigError
from prism.data.images import DEFAULT_MAX_PIXELS
from prism.data.labels import (ClassTable, LabelMapDataset, cityscapes_files, class_table, folder_files,
                               pair_files)

# data.format -> (how label files decode, default class table)
FORMATS = {"cityscapes": ("ids", "cityscapes-ids"), "camvid": ("ids", "camvid"),
           "colour": ("colour", "cityscapes-train"), "generic": ("ids", None)}
# the data section of every task that reads label maps with their photos (oasis, segment)
LABEL_DATA_DEFAULTS = {"format": "cityscapes", "classes": None, "train": None, "train_labels": None, "val": None,
                       "val_labels": None, "tolerance": 50.0, "label_side": "right", "load_size": [256, 512],
                       "crop": None, "flip": True, "max_pixels": DEFAULT_MAX_PIXELS}


def label_format(d: dict) -> tuple[str, ClassTable]:
    """A label data section -> (how its label files decode, its class table)."""
    if d["format"] not in FORMATS:
        raise ConfigError(f"data.format: unknown '{d['format']}'; use one of {', '.join(FORMATS)}")
    decoding, default_classes = FORMATS[d["format"]]
    if not (d["classes"] or default_classes):
        raise ConfigError("data.classes: the generic format needs a YAML class list (name, id, colour per class)")
    return decoding, class_table(d["classes"] or default_classes)


def label_dataset(d: dict, table: ClassTable, decoding: str, photos, labels, train: bool,
                  where: str = "data.{split}_labels") -> LabelMapDataset:
    """One split of a label data section. Photos are required for training, optional otherwise."""
    if d["format"] == "cityscapes":
        files = cityscapes_files(photos or labels, d.get("instances", False), photos="required" if train else "optional")
    elif labels:
        files = folder_files(photos, labels, photos_required=train)
    elif d["format"] == "colour":
        files = pair_files(photos, d["label_side"])
    else:
        name = where.format(split="train" if train else "val")
        raise ConfigError(f"{name}: the {d['format']} format reads label maps from their own folder")
    return LabelMapDataset(files, table, decoding, d["tolerance"], d["load_size"], d["crop"],
                           random_crop=train, flip=train and d["flip"], max_pixels=d["max_pixels"])


def label_card(d: dict, table: ClassTable, decoding: str) -> dict:
    """Model-card entries that let a model read label files the way its training data was read."""
    size = list(d["crop"] or d["load_size"] or [])
    return {"classes": table.to_dict(), "format": d["format"], "decoding": decoding, "tolerance": d["tolerance"],
            "label_side": d["label_side"], "train_size": size, "render_size": max(size) if size else None}
