"""Label-map datasets: every format PRISM reads (Cityscapes official layout, colour-coded maps,
CamVid ids, a YAML class list), their errors, aligned augmentation and the instance-boundary map."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from prism.data.images import DataError
from prism.data.labels import (IGNORE, LabelError, LabelMapDataset, class_table, cityscapes_files, folder_files,
                               instance_edges, pair_files, read_label)


def _png(array: np.ndarray, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _cityscapes_tree(root, ids: np.ndarray, city="ulm", name="ulm_000001_000019", split="train"):
    """One official-layout triplet. The photo's red channel holds the label id, so any
    misalignment between photo and label after augmentation shows exactly."""
    h, w = ids.shape
    instance = np.where(ids == 26, 26000 + (np.arange(w)[None] >= w // 2), ids).astype(np.uint16)  # two cars
    photo = np.stack([ids, np.full_like(ids, 7), np.arange(w, dtype=np.uint8)[None].repeat(h, 0)], -1).astype(np.uint8)
    base = root / "gtFine" / split / city
    _png(ids.astype(np.uint8), base / f"{name}_gtFine_labelIds.png")
    _png(instance, base / f"{name}_gtFine_instanceIds.png")
    _png(photo, root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png")
    return base / f"{name}_gtFine_labelIds.png"


def _layout(h=24, w=40) -> np.ndarray:
    ids = np.full((h, w), 7, np.uint8)  # road
    ids[: h // 3] = 23                    # sky
    ids[h // 3: h // 2, : w // 3] = 11    # building
    ids[h // 2:, w // 4: 3 * w // 4] = 26  # car, split into two instances
    ids[-2:, :3] = 0                      # unlabeled
    return ids


def test_class_tables():
    ids, train, camvid = class_table("cityscapes-ids"), class_table("cityscapes-train"), class_table("camvid")
    assert ids.num_classes == 35 and ids.names[7] == "road" and ids.names[34] == "license plate"
    assert train.num_classes == 19 and train.names[:3] == ["road", "sidewalk", "building"]
    assert train.names[18] == "bicycle"
    assert camvid.num_classes == 11 and camvid.names[8] == "car" and camvid.ignore_ids == (11,)
    assert train.decode_ids(np.array([[7, 0, 33, 18]]), "x").tolist() == [[0, IGNORE, 18, IGNORE]]  # polegroup: void
    assert ids.decode_ids(np.array([[7, 0, 33]]), "x").tolist() == [[7, 0, 33]]
    picture = train.colourize(torch.tensor([[[0, IGNORE]]]))
    assert (picture[0, :, 0, 0] * 255).round().tolist() == [128, 64, 128] and picture[0, :, 0, 1].tolist() == [0, 0, 0]
    with pytest.raises(DataError, match="not a file"):
        class_table("kitti")


def test_cityscapes_layout_ids_train_ids_instances_and_aligned_augmentation(tmp_path):
    ids = _layout()
    _cityscapes_tree(tmp_path, ids)
    files = cityscapes_files(tmp_path / "gtFine" / "train", instances=True)
    assert files[0].photo.name == "ulm_000001_000019_leftImg8bit.png" and files[0].instance.is_file()
    ds = LabelMapDataset(files, class_table("cityscapes-ids"), crop=(16, 32), flip=True)
    flips = set()
    for seed in range(10):
        s = ds[(0, seed)]
        assert s["label"].shape == s["instance"].shape == (16, 32) and s["image"].shape == (3, 16, 32)
        assert torch.equal((s["image"][0] * 255).round().long(), s["label"])  # photo and label aligned
        assert torch.equal(torch.where(s["instance"] >= 1000, s["instance"] // 1000, s["instance"]), s["label"])
        columns = (s["image"][2] * 255).round().long()[0]
        flips.add(bool(columns[0] > columns[-1]))
    assert flips == {True, False}

    train = LabelMapDataset(files, class_table("cityscapes-train"))[(0, 0)]["label"]
    expected = {7: 0, 23: 10, 11: 2, 26: 13, 0: IGNORE}
    assert torch.equal(train, torch.from_numpy(np.vectorize(expected.get)(ids)))

    resized = LabelMapDataset(files, class_table("cityscapes-ids"), load_size=(12, 20))[(0, 0)]
    assert resized["label"].shape == (12, 20) and set(resized["label"].unique().tolist()) <= {0, 7, 11, 23, 26}
    assert torch.equal(resized["label"], torch.from_numpy(ids[1::2, 1::2]).long())  # nearest: pixel centres


def test_cityscapes_errors_name_the_file(tmp_path):
    ids = _layout()
    ids[0, 0] = 40  # not a Cityscapes id
    label = _cityscapes_tree(tmp_path / "a", ids)
    ds = LabelMapDataset(cityscapes_files(tmp_path / "a" / "gtFine"), class_table("cityscapes-ids"))
    with pytest.raises(LabelError, match=rf"{label.name}: label ids \[40\] are not in the 'cityscapes-ids'"):
        ds[(0, 0)]

    label = _cityscapes_tree(tmp_path / "b", _layout())
    photo = tmp_path / "b" / "leftImg8bit" / "train" / "ulm" / "ulm_000001_000019_leftImg8bit.png"
    _png(np.zeros((24, 41, 3), np.uint8), photo)
    with pytest.raises(LabelError, match=r"sizes differ: label .*labelIds.png is 40x24, .*leftImg8bit.png is 41x24"):
        LabelMapDataset(cityscapes_files(tmp_path / "b" / "gtFine"), class_table("cityscapes-ids"))[(0, 0)]

    photo.unlink()
    with pytest.raises(LabelError, match=re.escape(f"{label}: no matching photo {photo}")):
        cityscapes_files(tmp_path / "b" / "gtFine")
    label_only = cityscapes_files(tmp_path / "b" / "gtFine", photos="optional")  # e.g. a validation set of maps
    sample = LabelMapDataset(label_only, class_table("cityscapes-ids"))[(0, 0)]
    assert "image" not in sample and sample["label"].shape == (24, 40)
    (label.parent / "ulm_000001_000019_gtFine_instanceIds.png").unlink()
    missing = f"{label}: no instance map ulm_000001_000019_gtFine_instanceIds.png"
    with pytest.raises(LabelError, match=re.escape(missing)):
        cityscapes_files(tmp_path / "b" / "gtFine", instances=True, photos="none")
    with pytest.raises(DataError, match="no Cityscapes label files"):
        cityscapes_files(tmp_path / "b" / "leftImg8bit")


def test_camvid_ids_void_and_partner_errors(tmp_path):
    ids = np.arange(12, dtype=np.uint8).repeat(4)[None].repeat(6, 0)  # every class and void
    _png(ids, tmp_path / "annot" / "0001TP_1.png")
    _png(np.zeros((6, 48, 3), np.uint8), tmp_path / "photos" / "0001TP_1.jpg")
    files = folder_files(tmp_path / "photos", tmp_path / "annot")
    label = LabelMapDataset(files, class_table("camvid"))[(0, 0)]["label"]
    assert label[0, ::4].tolist() == list(range(11)) + [IGNORE]

    _png(np.full((6, 48), 12, np.uint8), tmp_path / "bad" / "0001TP_1.png")
    with pytest.raises(LabelError, match=r"bad.0001TP_1.png: label ids \[12\] are not in the 'camvid'"):
        LabelMapDataset(folder_files(tmp_path / "photos", tmp_path / "bad"), class_table("camvid"))[(0, 0)]
    _png(ids, tmp_path / "annot" / "0001TP_2.png")
    with pytest.raises(LabelError, match=r"annot.0001TP_2.png: no photo named 0001TP_2\.\* in"):
        folder_files(tmp_path / "photos", tmp_path / "annot")
    _png(np.zeros((6, 48, 3), np.uint8), tmp_path / "photos" / "0001TP_2.jpg")
    _png(np.zeros((6, 48, 3), np.uint8), tmp_path / "photos" / "0001TP_3.jpg")
    with pytest.raises(LabelError, match=r"photos.0001TP_3.jpg: no label map named 0001TP_3\.\* in"):
        folder_files(tmp_path / "photos", tmp_path / "annot")
    rgb = np.stack([ids, ids + 1, ids], -1)
    with pytest.raises(LabelError, match="a colour image where single-channel label ids were expected"):
        read_label(Image.fromarray(rgb), class_table("camvid"), "ids", path="x.png")


def test_generic_yaml_class_list_and_palette_png(tmp_path):
    (tmp_path / "classes.yaml").write_text(
        "classes:\n  - {name: water, id: 10, colour: [0, 0, 255]}\n  - {name: sand, id: 20, colour: [255, 220, 120]}\n"
        "  - {name: rock, id: 30, colour: [90, 90, 90]}\nignore: {ids: [0]}\n")
    table = class_table(tmp_path / "classes.yaml")
    assert table.names == ["water", "sand", "rock"] and table.ignore_ids == (0,)
    ids = np.array([[10, 20, 30, 0]], np.uint8)
    indexed = Image.new("P", (4, 1))  # palette PNGs: the palette index is the id
    indexed.putdata(ids.ravel().tolist())
    indexed.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
    indexed.save(tmp_path / "map.png")
    assert read_label(tmp_path / "map.png", table)[0].tolist() == [[0, 1, 2, IGNORE]]
    assert class_table(table.to_dict()) == table
    (tmp_path / "broken.yaml").write_text("classes:\n  - {name: water, id: 10}\n")
    with pytest.raises(DataError, match="each class needs name, id and colour"):
        class_table(tmp_path / "broken.yaml")


def test_jpeg_noisy_colour_map_maps_to_nearest_palette_colour(tmp_path):
    """A street-like layout in Cityscapes colours at 128x192, saved as JPEG quality 75 beside a photo as a
    pix2pix pair: nearest-colour decoding must recover >95% of the pixels (JPEG smears colours
    for a few pixels around every boundary: those are the rest), and a white region (far from
    every palette colour) must become don't-care."""
    table = class_table("cityscapes-train")
    rng = np.random.default_rng(0)
    truth = np.full((64, 96), 0)       # road
    truth[:20] = 10                    # sky
    truth[14:36, :50] = 2              # building
    truth[18:36, 50:] = 8              # vegetation
    truth[36:42] = 1                   # sidewalk
    truth[8:42, 44:47] = 5             # a pole
    truth[40:54, 6:30] = 13            # a car
    truth[30:42, 20:26] = 11           # a person
    truth[44:60, 56:88] = -1           # white: no class
    truth = truth.repeat(2, 0).repeat(2, 1)  # 128x192: region sizes of the 256x256 Cityscapes pairs
    colours = np.array([c.colour for c in table.classes] + [(255, 255, 255)], np.uint8)
    label_rgb = colours[truth]
    pair = np.concatenate([rng.integers(0, 256, label_rgb.shape, dtype=np.uint8), label_rgb], 1)
    buf = io.BytesIO()
    Image.fromarray(pair).save(buf, "JPEG", quality=75)
    (tmp_path / "pair.jpg").write_bytes(buf.getvalue())
    decoded_rgb = np.asarray(Image.open(tmp_path / "pair.jpg"))[:, 192:]
    assert np.abs(decoded_rgb.astype(int) - label_rgb).max() > 30  # the noise is real

    sample = LabelMapDataset(pair_files(tmp_path), table, "colour", tolerance=50)[(0, 0)]
    label, white = sample["label"].numpy(), truth == -1
    assert (label[~white] == truth[~white]).mean() > 0.95
    inner = np.zeros_like(white)
    inner[96:112, 120:168] = True  # away from JPEG's smearing at the region's border
    assert (label[inner] == IGNORE).all()
    assert white.mean() - 0.02 <= float(sample["unmatched"]) <= white.mean() + 0.03  # the white share, reported
    exact, unmatched = read_label(Image.fromarray(label_rgb), table, "colour", tolerance=0)
    assert (exact[~white] == truth[~white]).all() and unmatched == pytest.approx(white.mean())


def test_instance_boundary_map_is_exact_on_a_hand_made_map():
    inst = torch.tensor([[5, 5, 5, 7, 7],
                         [5, 5, 5, 7, 7],
                         [5, 5, 5, 5, 5],
                         [5, 5, 5, 5, 5]])
    expected = torch.tensor([[0, 0, 1, 1, 0],
                             [0, 0, 1, 1, 1],
                             [0, 0, 0, 1, 1],
                             [0, 0, 0, 0, 0]], dtype=torch.float32)
    edges = instance_edges(torch.stack([inst, torch.zeros_like(inst)]))
    assert edges.shape == (2, 1, 4, 5)
    assert torch.equal(edges[0, 0], expected) and not edges[1].any()
