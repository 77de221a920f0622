"""Reading images safely, the ImageFolder dataset and the resumable sampler."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from prism.data.folder import ImageFolder, collate
from prism.data.images import (DEFAULT_MAX_PIXELS, DataError, ImageReadError, list_images, open_image,
                               pil_to_float, read_image, to_float)
from prism.data.sampling import ResumableSampler, sample_seed


# --- helpers ------------------------------------------------------------------------------------------
def _photo(h: int = 40, w: int = 56) -> np.ndarray:
    """A smooth color gradient (compresses well, survives JPEG)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1),
                     np.full_like(x, 128)], axis=2).astype(np.uint8)


def _png_with_size(width: int, height: int) -> bytes:
    """A valid 1x1 8-bit PNG whose IHDR claims width x height (with a correct CRC)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    png = bytearray(buf.getvalue())
    assert png[12:16] == b"IHDR"
    png[16:24] = struct.pack(">II", width, height)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])) & 0xFFFFFFFF)
    return bytes(png)


def _write_bad_files(folder: Path) -> dict[str, str]:
    """The five kinds of unreadable file -> {name: expected words in the reason}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    (folder / "corrupt.jpg").write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    buf = io.BytesIO()
    Image.fromarray(_photo(64, 80)).save(buf, "JPEG", quality=90)
    jpeg = buf.getvalue()
    (folder / "truncated.jpg").write_bytes(jpeg[: int(len(jpeg) * 0.4)])
    (folder / "zero.png").write_bytes(b"")
    (folder / "notes.png").write_text("these are my notes, not a picture\n" * 20)
    (folder / "bomb.png").write_bytes(_png_with_size(40000, 40000))
    return {"corrupt.jpg": "not an image", "truncated.jpg": "truncated", "zero.png": "empty",
            "notes.png": "not an image", "bomb.png": "decompression bomb"}


@pytest.fixture()
def mixed_folder(tmp_path) -> tuple[Path, set[str]]:
    """Good images interleaved with bad ones (sorted order: bad ones sit between good ones)."""
    root = tmp_path / "mixed"
    bad = _write_bad_files(root / "sub")
    for i in range(6):
        Image.fromarray(_photo(40 + i, 48 + 2 * i)).save(root / f"good{i}.png")
        Image.fromarray(_photo(36, 44)).save(root / "sub" / f"ok{i}.jpg")
    return root, {str(root / "sub" / name) for name in bad}


# --- unreadable files -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["corrupt.jpg", "truncated.jpg", "zero.png", "notes.png", "bomb.png"])
def test_bad_file_raises_image_read_error_naming_it(tmp_path, name):
    expected = _write_bad_files(tmp_path)[name]
    path = tmp_path / name
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    err = info.value
    assert err.path == path
    assert expected in err.reason.lower(), err.reason
    assert str(path) in str(err)


def test_header_over_max_pixels_is_refused_before_decoding(tmp_path):
    # 9000 x 9000 = 81 Mpx: above prism's 80 Mpx limit but below PIL's own bomb threshold.
    path = tmp_path / "big.png"
    path.write_bytes(_png_with_size(9000, 9000))
    assert 9000 * 9000 > DEFAULT_MAX_PIXELS
    with pytest.raises(ImageReadError) as info:
        open_image(path)
    assert "9000x9000" in info.value.reason and "decompression bomb" in info.value.reason
    assert info.value.path == path


def test_max_pixels_above_pil_limit_is_honoured(tmp_path):
    # 10000 x 10000 = 100 Mpx header (the pixel data is missing): allowed by max_pixels=200 Mpx, so
    # the file must fail as truncated, not be refused as a decompression bomb.
    path = tmp_path / "big.png"
    path.write_bytes(_png_with_size(10000, 10000))
    with pytest.raises(ImageReadError) as info:
        open_image(path, max_pixels=200_000_000)
    assert "decompression bomb" not in info.value.reason, info.value.reason


def test_max_pixels_applies_to_normal_images(tmp_path):
    path = tmp_path / "normal.png"
    Image.fromarray(_photo(40, 60)).save(path)
    assert open_image(path, max_pixels=2400).size == (60, 40)  # exactly at the limit is fine
    with pytest.raises(ImageReadError) as info:
        open_image(path, max_pixels=2399)
    assert "60x40" in info.value.reason and info.value.path == path
    with pytest.raises(ImageReadError):
        read_image(path, max_pixels=100)


def test_missing_file_raises_image_read_error(tmp_path):
    with pytest.raises(ImageReadError) as info:
        read_image(tmp_path / "nope.png")
    assert info.value.path == tmp_path / "nope.png"
    assert "cannot read" in info.value.reason


# --- list_images / DataError ------------------------------------------------------------------------------
def test_missing_folder_is_a_data_error(tmp_path):
    missing = tmp_path / "does-not-exist"
    with pytest.raises(DataError, match="no such file") as info:
        ImageFolder(missing)
    assert str(missing) in str(info.value)


def test_empty_folder_is_a_data_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as info:
        ImageFolder(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(info.value) and "no image files" in str(info.value)


def test_folder_with_only_non_image_extensions_is_a_data_error(tmp_path):
    folder = tmp_path / "docs"
    (folder / "deep").mkdir(parents=True)
    (folder / "readme.txt").write_text("hi")
    (folder / "deep" / "data.csv").write_text("1,2")
    Image.fromarray(_photo()).save(folder / "deep" / "pic.gif")  # not one of IMAGE_EXTS
    with pytest.raises(DataError) as info:
        list_images(folder)
    assert str(folder) in str(info.value)
    with pytest.raises(DataError):
        ImageFolder(folder)


def test_list_images_recursive_sorted_and_filtered(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    for rel in ["b/2.PNG", "a/1.jpg", "a/x.txt", "0.jpeg"]:
        (tmp_path / rel).write_bytes(b"x")
    assert list_images(tmp_path) == [tmp_path / "0.jpeg", tmp_path / "a/1.jpg", tmp_path / "b/2.PNG"]
    assert list_images(tmp_path, recursive=False) == [tmp_path / "0.jpeg"]
    assert list_images([tmp_path / "a/1.jpg", tmp_path / "b"]) == [tmp_path / "a/1.jpg", tmp_path / "b/2.PNG"]


# --- ImageFolder with bad files -------------------------------------------------------------------------
def test_dataset_substitutes_bad_files_with_following_good_ones(mixed_folder):
    root, bad = mixed_folder
    ds = ImageFolder(root, size=32, crop="center", flip=False)
    assert len(ds) == 17
    files = [str(f) for f in ds.files]
    first_bad = min(files.index(b) for b in bad)
    for i in range(len(ds)):
        sample = ds[i, i]
        assert sample["image"].shape == (3, 32, 32)
        assert sample["path"] not in bad
        skipped_paths = [s.split("\t")[0] for s in sample["skipped"]]
        assert set(skipped_paths) <= bad
        if files[i] in bad:
            assert skipped_paths[0] == files[i]
            # the substitute is the first good file after the bad one(s)
            j = i
            while files[j % len(files)] in bad:
                j += 1
            assert sample["path"] == files[j % len(files)]
            assert len(sample["skipped"]) == j - i
        else:
            assert sample["path"] == files[i] and sample["skipped"] == []
    reasons = {s.split("\t")[0]: s.split("\t")[1] for s in ds[first_bad, 0]["skipped"]}
    assert all(reasons.values()), reasons


def test_dataloader_epoch_over_bad_files_reports_exactly_them(mixed_folder):
    root, bad = mixed_folder
    ds = ImageFolder(root, size=24)
    sampler = ResumableSampler(len(ds), seed=3)
    loader = DataLoader(ds, batch_size=4, sampler=sampler, collate_fn=collate, num_workers=0)
    skipped, seen, n = set(), [], 0
    for batch in loader:
        assert batch["image"].shape[1:] == (3, 24, 24)
        assert batch["image"].dtype == torch.float32
        assert len(batch["path"]) == len(batch["image"])
        n += len(batch["image"])
        seen += batch["path"]
        for entry in batch["skipped"]:
            path, reason = entry.split("\t")
            assert reason
            skipped.add(path)
    assert n == len(ds)
    assert skipped == bad
    assert not set(seen) & bad


def test_collate_stacks_tensors_and_flattens_lists():
    samples = [{"image": torch.zeros(3, 4, 4), "path": "a", "skipped": []},
               {"image": torch.ones(3, 4, 4), "path": "b", "skipped": ["x\tr1", "y\tr2"]}]
    out = collate(samples)
    assert out["image"].shape == (2, 3, 4, 4) and out["image"][1].min() == 1
    assert out["path"] == ["a", "b"] and out["skipped"] == ["x\tr1", "y\tr2"]


# --- modes ---------------------------------------------------------------------------------------------
def _roundtrip(tmp_path, img: Image.Image, name: str, **kw):
    path = tmp_path / name
    img.save(path, **kw)
    return read_image(path)


def test_mode_L(tmp_path):
    arr = np.array([[0, 51, 255]], dtype=np.uint8)
    li = _roundtrip(tmp_path, Image.fromarray(arr, "L"), "l.png")
    assert li.rgb.shape == (1, 3, 3) and li.rgb.dtype == np.float32 and li.was_gray and li.alpha is None
    np.testing.assert_allclose(li.rgb[0, :, 0], [0, 0.2, 1], atol=1e-6)
    assert np.array_equal(li.rgb[..., 0], li.rgb[..., 2])


def test_mode_LA_returns_alpha(tmp_path):
    arr = np.dstack([np.full((2, 3), 100, np.uint8), np.array([[0, 128, 255], [255, 255, 0]], np.uint8)])
    li = _roundtrip(tmp_path, Image.fromarray(arr, "LA"), "la.png")
    assert li.was_gray
    np.testing.assert_allclose(li.rgb, 100 / 255, atol=1e-6)
    np.testing.assert_allclose(li.alpha, arr[..., 1] / 255, atol=1e-6)


def test_mode_RGB(tmp_path):
    arr = _photo(5, 6)
    li = _roundtrip(tmp_path, Image.fromarray(arr), "rgb.png")
    assert not li.was_gray and li.alpha is None
    np.testing.assert_allclose(li.rgb, arr / 255, atol=1e-6)


def test_mode_RGBA_returns_alpha(tmp_path):
    arr = np.dstack([_photo(5, 6), np.linspace(0, 255, 30).reshape(5, 6).astype(np.uint8)])
    li = _roundtrip(tmp_path, Image.fromarray(arr, "RGBA"), "rgba.png")
    assert li.rgb.shape == (5, 6, 3) and li.alpha.shape == (5, 6)
    np.testing.assert_allclose(li.rgb, arr[..., :3] / 255, atol=1e-6)
    np.testing.assert_allclose(li.alpha, arr[..., 3] / 255, atol=1e-6)


def _palette_image() -> Image.Image:
    p = Image.new("P", (4, 3), 0)
    p.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    p.putpixel((1, 2), 1)
    return p


def test_mode_P_without_transparency(tmp_path):
    li = _roundtrip(tmp_path, _palette_image(), "p.png")
    assert li.alpha is None and not li.was_gray
    np.testing.assert_array_equal(li.rgb[0, 0], [1, 0, 0])
    np.testing.assert_array_equal(li.rgb[2, 1], [0, 1, 0])


def test_mode_P_with_transparency(tmp_path):
    li = _roundtrip(tmp_path, _palette_image(), "pt.png", transparency=0)
    assert Image.open(tmp_path / "pt.png").mode == "P"
    expected = np.zeros((3, 4), np.float32)
    expected[2, 1] = 1.0  # only the palette-1 pixel is opaque
    np.testing.assert_array_equal(li.alpha, expected)
    np.testing.assert_array_equal(li.rgb[2, 1], [0, 1, 0])


def test_mode_I16_scaled_to_unit_range(tmp_path):
    arr = np.array([[0, 32768, 65535, 16384]], dtype=np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(arr).save(path)
    assert Image.open(path).mode == "I;16"
    li = read_image(path)
    assert li.was_gray and li.alpha is None and li.rgb.shape == (1, 4, 3)
    np.testing.assert_allclose(li.rgb[0, :, 1], [0.0, 0.5, 1.0, 0.25], atol=1e-4)


def test_mode_I16_dark_image_is_not_brightened(tmp_path):
    arr = np.array([[0, 100, 200, 255]], dtype=np.uint16)  # a nearly black 16-bit image
    path = tmp_path / "dark16.png"
    Image.fromarray(arr).save(path)
    li = read_image(path)
    np.testing.assert_allclose(li.rgb[0, :, 0], arr[0] / 65535.0, atol=1e-5)


def test_mode_CMYK_jpeg(tmp_path):
    li = _roundtrip(tmp_path, Image.new("CMYK", (8, 6), (0, 255, 255, 0)), "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    assert li.rgb.shape == (6, 8, 3) and not li.was_gray
    np.testing.assert_allclose(li.rgb.mean(axis=(0, 1)), [1, 0, 0], atol=0.03)  # red


def test_mode_1bit(tmp_path):
    img = Image.fromarray(np.array([[0, 255, 0], [255, 0, 255]], np.uint8)).convert("1")
    li = _roundtrip(tmp_path, img, "bits.png")
    assert Image.open(tmp_path / "bits.png").mode == "1"
    assert li.was_gray
    np.testing.assert_array_equal(li.rgb[..., 0], [[0, 1, 0], [1, 0, 1]])


def test_pil_objects_directly():
    li = to_float(Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16)))
    np.testing.assert_allclose(li.rgb[0, :, 0], [0, 0.5, 1], atol=1e-4)
    li = pil_to_float(Image.new("RGBA", (3, 2), (10, 20, 30, 40)))
    np.testing.assert_allclose(li.alpha, 40 / 255, atol=1e-6)


# --- numpy input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,peak", [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1.0), (np.float64, 1.0)])
@pytest.mark.parametrize("channels", [None, 1, 3, 4])
def test_numpy_input(dtype, peak, channels):
    h, w = 5, 7
    shape = (h, w) if channels is None else (h, w, channels)
    base = np.linspace(0, 1, int(np.prod(shape))).reshape(shape)
    arr = (base * peak).astype(dtype) if peak != 1.0 else base.astype(dtype)
    li = to_float(arr)
    assert li.rgb.shape == (h, w, 3) and li.rgb.dtype == np.float32
    assert li.rgb.flags["C_CONTIGUOUS"]
    assert li.was_gray == (channels in (None, 1))
    exp = base
    tol = 1.0 / peak + 1e-6
    if channels in (None, 1):
        gray = exp.reshape(h, w)
        for c in range(3):
            np.testing.assert_allclose(li.rgb[..., c], gray, atol=tol)
    else:
        np.testing.assert_allclose(li.rgb, exp[..., :3], atol=tol)
    if channels == 4:
        np.testing.assert_allclose(li.alpha, exp[..., 3], atol=tol)
    else:
        assert li.alpha is None


def test_numpy_float_out_of_range_is_clipped():
    li = to_float(np.array([[-0.5, 0.25, 3.0]], dtype=np.float32))
    np.testing.assert_allclose(li.rgb[0, :, 0], [0, 0.25, 1])


@pytest.mark.parametrize("shape", [(5,), (5, 7, 2), (5, 7, 5), (2, 5, 7, 3)])
def test_numpy_bad_shape_raises_value_error(shape):
    with pytest.raises(ValueError, match="image array"):
        to_float(np.zeros(shape, np.uint8))


# --- EXIF orientation -----------------------------------------------------------------------------------
def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:, :30] = 255  # left half white
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif, quality=95)
    li = read_image(path)
    assert li.rgb.shape == (60, 40, 3)
    # after a 90 deg clockwise rotation the white left half is on top
    assert li.rgb[:25].mean() > 0.9 and li.rgb[35:].mean() < 0.1
    # and the dataset sees the same orientation
    ds = ImageFolder(tmp_path, size=None)
    assert ds[0]["image"].shape == (3, 60, 40)


# --- ImageFolder crops ----------------------------------------------------------------------------------
@pytest.fixture()
def one_image(tmp_path) -> tuple[Path, np.ndarray]:
    arr = np.random.default_rng(5).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "img.png")
    return tmp_path, arr


@pytest.mark.parametrize("size", [16, 32, 48])
def test_crop_size(one_image, size):
    root, _ = one_image
    for crop in ("random", "center"):
        x = ImageFolder(root, size=size, crop=crop)[0, 11]["image"]
        assert x.shape == (3, size, size) and x.dtype == torch.float32
        assert 0 <= x.min() and x.max() <= 1


def test_center_crop_is_deterministic_and_exact(one_image):
    root, arr = one_image
    ds = ImageFolder(root, size=32, crop="center", flip=False)
    a, b = ds[0, 1]["image"], ds[0, 999]["image"]
    assert torch.equal(a, b)
    expected = torch.from_numpy(arr[8:40, 16:48].astype(np.float32) / 255).permute(2, 0, 1)
    assert torch.allclose(a, expected, atol=1e-6)


def test_no_size_keeps_image_as_is(one_image):
    root, arr = one_image
    x = ImageFolder(root, size=None)[0]["image"]
    assert torch.allclose(x, torch.from_numpy(arr / 255.0).float().permute(2, 0, 1), atol=1e-6)


def test_same_index_and_seed_gives_identical_tensor(one_image):
    root, _ = one_image
    ds = ImageFolder(root, size=24, crop="random", flip=True)
    for seed in (0, 1, 123456789):
        assert torch.equal(ds[0, seed]["image"], ds[0, seed]["image"])
    # independent of the global RNG state
    torch.manual_seed(1)
    np.random.seed(1)
    a = ds[0, 42]["image"]
    torch.manual_seed(2)
    np.random.seed(2)
    assert torch.equal(a, ds[0, 42]["image"])
    # and it does not consume the global torch RNG
    torch.manual_seed(3)
    ds[0, 7]
    after = torch.rand(1)
    torch.manual_seed(3)
    assert torch.equal(after, torch.rand(1))


def test_different_seeds_give_different_crops_and_flips(one_image):
    root, arr = one_image
    ds = ImageFolder(root, size=24, crop="random", flip=True)
    outs = [ds[0, s]["image"] for s in range(12)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])
    # every random crop is a (possibly mirrored) window of the image; both orientations occur
    full = torch.from_numpy(arr.astype(np.float32) / 255).permute(2, 0, 1)
    windows = full.unfold(1, 24, 1).unfold(2, 24, 1)  # (3, 25, 41, 24, 24): every 24 px window
    flips = set()
    for o in outs:
        plain = (windows - o[:, None, None]).abs().amax(dim=(0, 3, 4)).min() < 1e-5
        mirrored = (windows - o.flip(-1)[:, None, None]).abs().amax(dim=(0, 3, 4)).min() < 1e-5
        assert plain or mirrored, "crop is not a window of the image"
        flips.add(bool(mirrored))
    assert flips == {True, False}


def test_flip_disabled_never_mirrors(one_image):
    root, arr = one_image
    ds = ImageFolder(root, size=48, crop="random", flip=False)  # the crop covers the full height
    full = torch.from_numpy(arr.astype(np.float32) / 255).permute(2, 0, 1)
    for s in range(6):
        x = ds[0, s]["image"]
        assert any(torch.allclose(x, full[:, :, l:l + 48], atol=1e-6) for l in range(17))


def test_split_left_right_on_side_by_side_pair(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)
    arr[:, 20:] = (0, 0, 255)
    Image.fromarray(arr).save(tmp_path / "pair.png")
    right = ImageFolder(tmp_path, size=None, split="right")[0]["image"]
    left = ImageFolder(tmp_path, size=None, split="left")[0]["image"]
    assert right.shape == left.shape == (3, 20, 20)
    assert torch.equal(right[2], torch.ones(20, 20)) and right[:2].abs().max() == 0
    assert torch.equal(left[0], torch.ones(20, 20)) and left[1:].abs().max() == 0
    cropped = ImageFolder(tmp_path, size=16, split="right", crop="random")[0, 3]["image"]
    assert cropped.shape == (3, 16, 16) and torch.allclose(cropped[2], torch.ones(16, 16))


def test_small_images_are_upscaled_to_cover_size(tmp_path):
    Image.fromarray(_photo(12, 30)).save(tmp_path / "wide.png")
    Image.fromarray(_photo(30, 10)).save(tmp_path / "tall.png")
    Image.fromarray(_photo(9, 9)).save(tmp_path / "tiny.png")
    for crop in ("center", "random"):
        ds = ImageFolder(tmp_path, size=32, crop=crop)
        for i in range(len(ds)):
            x = ds[i, i]["image"]
            assert x.shape == (3, 32, 32)
            assert x.std() > 0.01  # real picture content, not padding


def test_load_size_resizes_short_side_before_cropping(tmp_path):
    Image.fromarray(_photo(40, 80)).save(tmp_path / "a.png")
    ds = ImageFolder(tmp_path, size=16, load_size=20, crop="center", flip=False)
    x = ds[0]["image"]
    assert x.shape == (3, 16, 16)
    # 40x80 -> 20x40: the 16 px center crop spans columns 12..28 of 40, i.e. red 0.3..0.7
    assert 0.25 < x[0].min() and x[0].max() < 0.75


def test_unknown_crop_mode_is_rejected(one_image):
    with pytest.raises(ValueError, match="crop"):
        ImageFolder(one_image[0], crop="middle")


def test_photo_folder_fixture_as_dataset(photo_folder):
    ds = ImageFolder(photo_folder, size=32)
    assert len(ds) == 24
    assert {Path(p).parent.name for p in map(str, ds.files)} == {"a", "b"}
    batch = collate([ds[i, i] for i in range(4)])
    assert batch["image"].shape == (4, 3, 32, 32) and batch["skipped"] == []


# --- ResumableSampler -----------------------------------------------------------------------------------
def test_sampler_same_seed_and_epoch_same_order():
    a, b = ResumableSampler(20, seed=5), ResumableSampler(20, seed=5)
    a.set_epoch(3)
    b.set_epoch(3)
    la, lb = list(a), list(b)
    assert la == lb and len(la) == len(a) == 20
    assert sorted(i for i, _ in la) == list(range(20))
    assert [s for _, s in la] == [sample_seed(5, 3, i) for i, _ in la]
    # a different epoch or seed reshuffles
    b.set_epoch(4)
    assert [i for i, _ in b] != [i for i, _ in la]
    c = ResumableSampler(20, seed=6)
    c.set_epoch(3)
    assert [i for i, _ in c] != [i for i, _ in la]


def test_sampler_no_shuffle_is_in_order():
    assert [i for i, _ in ResumableSampler(7, shuffle=False)] == list(range(7))


@pytest.mark.parametrize("start", [0, 1, 7, 19, 20])
def test_sampler_resume_yields_the_tail(start):
    s = ResumableSampler(20, seed=11)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, start=start)
    assert list(s) == full[start:]
    s.set_epoch(2)  # start resets
    assert list(s) == full


@pytest.mark.parametrize("n", [10, 11])
def test_sampler_ranks_partition_the_epoch(n):
    ranks = [ResumableSampler(n, seed=1, rank=r, world_size=2) for r in range(2)]
    for r in ranks:
        r.set_epoch(4)
    parts = [[i for i, _ in r] for r in ranks]
    assert len(parts[0]) == len(parts[1]) == len(ranks[0]) == len(ranks[1]) == -(-n // 2)
    assert set(parts[0]) | set(parts[1]) == set(range(n))
    if n % 2 == 0:
        assert not set(parts[0]) & set(parts[1])
        assert sorted(parts[0] + parts[1]) == list(range(n))
    # the shards interleave the single-process order
    single = ResumableSampler(n, seed=1)
    single.set_epoch(4)
    order = [i for i, _ in single]
    assert parts[0] == order[0::2][: len(parts[0])]


def test_sampler_resume_per_rank():
    s = ResumableSampler(12, seed=2, rank=1, world_size=3)
    full = list(s)
    s.set_epoch(0, start=2)
    assert list(s) == full[2:]


def test_sampler_oversamples_when_length_exceeds_dataset():
    s = ResumableSampler(10, seed=0, length=25)
    out = [i for i, _ in s]
    assert len(out) == len(s) == 25
    assert set(out) == set(range(10))
    counts = np.bincount(out, minlength=10)
    assert counts.min() >= 2 and counts.max() <= 3


def test_sampler_undersamples_when_length_is_smaller():
    out = [i for i, _ in ResumableSampler(10, seed=0, length=4)]
    assert len(out) == 4 and len(set(out)) == 4


def test_sampler_rejects_empty_dataset():
    with pytest.raises(ValueError):
        ResumableSampler(0)
