"""FID / KID / MiFID (prism.fid): torchmetrics' numbers against formulas written out here in
numpy, the FID Inception-v3 layout against pytorch-fid's weight file layout, weight loading, and
the real-set cache. A fixed linear projection stands in for Inception in the metric tests so
the features are known exactly; the real architecture runs on a handful of images only."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from prism.fid import inception as inc
from prism.fid import metrics as fm
from prism.weights import sha256

SIDE = 8            # test images are SIDE x SIDE RGB
DIM = 16            # projection feature size
TM_EPS = 10e-15     # the epsilon torchmetrics (and the competition script) add to the distance


class FixedProjection(nn.Module):
    """features = flattened image @ W in float64, W fixed by `seed`; counts the images it sees."""

    input_size = (SIDE, SIDE)
    num_features = DIM  # else torchmetrics' FID probes the network with a (1, 3, 299, 299) image

    def __init__(self, seed: int = 0):
        super().__init__()
        w = np.random.default_rng(seed).normal(size=(3 * SIDE * SIDE, DIM))
        w -= w.mean(axis=0)  # blind to overall brightness, so unrelated images are not all aligned
        self.register_buffer("weight", torch.from_numpy(w))
        self.images_seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images_seen += x.shape[0]
        return x.flatten(1).double() @ self.weight


def np_features(images: np.ndarray, net: FixedProjection) -> np.ndarray:
    """(N,H,W,3) uint8 -> features, the way the loader reads them (float32 / 255, CHW)."""
    x = (images.astype(np.float32) / np.float32(255.0)).transpose(0, 3, 1, 2).reshape(len(images), -1)
    return x.astype(np.float64) @ net.weight.numpy()


def np_fid(f1: np.ndarray, f2: np.ndarray) -> float:
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def np_mean_min_cosine_distance(over: np.ndarray, to: np.ndarray) -> float:
    """Average over `over` of each row's smallest 1 - |cos| to any row of `to`."""
    a = over / np.linalg.norm(over, axis=1, keepdims=True)
    b = to / np.linalg.norm(to, axis=1, keepdims=True)
    return float((1.0 - np.abs(a @ b.T)).min(axis=1).mean())


def np_mifid(fake: np.ndarray, real: np.ndarray, over: str, eps: float = 0.1) -> float:
    """Competition MiFID (over="fake": distance of each generated image to the real set);
    over="real" swaps the roles, which is what torchmetrics' class computes."""
    fid = np_fid(real, fake)
    d = np_mean_min_cosine_distance(fake, real) if over == "fake" else np_mean_min_cosine_distance(real, fake)
    d = d if d < eps else 1.0
    return fid / (d + TM_EPS) if fid > 1e-8 else 0.0


def np_kid(fx: np.ndarray, fy: np.ndarray, degree: int = 3) -> float:
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^degree, both sets of size m."""
    m, d = len(fx), fx.shape[1]
    k = lambda a, b: (a @ b.T / d + 1.0) ** degree  # noqa: E731
    kxx, kyy, kxy = k(fx, fx), k(fy, fy), k(fx, fy)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.sum() / m ** 2)


def write_folder(folder, images: np.ndarray):
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    return folder


def random_images(rng, n, low=0, high=256) -> np.ndarray:
    return rng.integers(low, high, size=(n, SIDE, SIDE, 3), dtype=np.uint8)


@pytest.fixture
def sets(tmp_path):
    rng = np.random.default_rng(1)
    real = random_images(rng, 40)
    fake = random_images(rng, 30, low=40)  # another distribution: brighter, narrower
    return {"real": real, "fake": fake,
            "real_dir": write_folder(tmp_path / "real", real), "fake_dir": write_folder(tmp_path / "fake", fake),
            "cache": tmp_path / "cache"}


# ---------------------------------------------------------------------------------------------
# metric math

def test_fid_matches_numpy_reference_and_plain_torchmetrics(sets):
    from torchmetrics.image.fid import FrechetInceptionDistance
    net = FixedProjection()
    want = np_fid(np_features(sets["real"], net), np_features(sets["fake"], net))
    got = fm.compute_fid(sets["real_dir"], sets["fake_dir"], feature=net, batch_size=7, cache=False)
    assert want > 1.0
    assert got == pytest.approx(want, rel=1e-6, abs=1e-3)
    # the same images given as a tensor, and torchmetrics used directly with the network
    as_tensor = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255.0  # noqa: E731
    assert fm.compute_fid(as_tensor(sets["real"]), as_tensor(sets["fake"]), feature=net) == pytest.approx(got, rel=1e-9)
    direct = FrechetInceptionDistance(feature=net)
    direct.update(as_tensor(sets["real"]), real=True)
    direct.update(as_tensor(sets["fake"]), real=False)
    assert float(direct.compute()) == pytest.approx(got, rel=1e-9)
    assert "torch_fidelity" not in sys.modules and "torchvision" not in sys.modules


def test_kid_matches_unbiased_polynomial_mmd(sets):
    net = FixedProjection()
    real, fake = sets["real"][:30], sets["fake"]
    want = np_kid(np_features(real, net), np_features(fake, net))
    r = fm.distribution_metrics(torch.from_numpy(real).permute(0, 3, 1, 2).float() / 255, sets["fake_dir"],
                                ("kid",), feature=net, kid_subsets=3, kid_subset_size=30)
    assert r["kid_subset_size"] == 30
    # with subsets as large as the sets every subset is the whole set: one value, std 0
    assert r["kid_mean"] == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert r["kid_std"] == pytest.approx(0.0, abs=1e-12)
    assert abs(want) > 1e-4


def test_mifid_both_directions_against_the_formula(sets, tmp_path):
    """A generator that reproduces 5 of the 40 real images (with slight noise): measured from the
    generated side (the competition) every fake has a near-twin, measured from the real side
    (torchmetrics' order) most real images have none, so only the first is penalised."""
    from torchmetrics.image.mifid import MemorizationInformedFrechetInceptionDistance
    net, rng = FixedProjection(), np.random.default_rng(2)
    real = sets["real"]
    copies = np.repeat(real[:5], 4, axis=0).astype(int) + rng.integers(-2, 3, size=(20, SIDE, SIDE, 3))
    fake = np.clip(copies, 0, 255).astype(np.uint8)
    fake_dir = write_folder(tmp_path / "copies", fake)
    f_real, f_fake = np_features(real, net), np_features(fake, net)
    assert np_mean_min_cosine_distance(f_fake, f_real) < 0.1 < np_mean_min_cosine_distance(f_real, f_fake)

    competition = fm.compute_mifid(sets["real_dir"], fake_dir, feature=net, cache=False)
    assert competition == pytest.approx(np_mifid(f_fake, f_real, over="fake"), rel=1e-6)
    reverse = fm.compute_mifid(sets["real_dir"], fake_dir, feature=net, cache=False, direction="real_to_fake")
    assert reverse == pytest.approx(np_mifid(f_fake, f_real, over="real"), rel=1e-6)
    assert reverse == pytest.approx(np_fid(f_real, f_fake), rel=1e-6)  # over the threshold: no penalty
    assert competition > 10 * reverse

    # "real_to_fake" is torchmetrics used as documented (real images as real=True)
    direct = MemorizationInformedFrechetInceptionDistance(feature=net)
    as_tensor = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255.0  # noqa: E731
    direct.update(as_tensor(real), real=True)
    direct.update(as_tensor(fake), real=False)
    assert float(direct.compute()) == pytest.approx(reverse, rel=1e-9)


def test_mifid_threshold(sets):
    net = FixedProjection()
    f_real, f_fake = np_features(sets["real"], net), np_features(sets["fake"], net)
    d = np_mean_min_cosine_distance(f_fake, f_real)
    assert 0.1 < d < 0.9  # unrelated sets: no memorisation at the default threshold
    default = fm.compute_mifid(sets["real_dir"], sets["fake_dir"], feature=net, cache=False)
    assert default == pytest.approx(np_fid(f_real, f_fake) / (1 + TM_EPS), rel=1e-6)
    loose = fm.compute_mifid(sets["real_dir"], sets["fake_dir"], feature=net, cache=False, cosine_distance_eps=0.9)
    assert loose == pytest.approx(np_fid(f_real, f_fake) / (d + TM_EPS), rel=1e-6)


def test_rejects_bad_requests(sets, tmp_path):
    net = FixedProjection()
    with pytest.raises(ValueError, match="subset of"):
        fm.distribution_metrics(sets["real_dir"], sets["fake_dir"], ("fid", "is"), feature=net)
    one = write_folder(tmp_path / "one", sets["fake"][:1])
    with pytest.raises(ValueError, match="fake set has 1 readable"):
        fm.compute_fid(sets["real_dir"], one, feature=net, cache=False)
    with pytest.raises(ValueError, match="direction"):
        fm.compute_mifid(sets["real_dir"], sets["fake_dir"], feature=net, cache=False, direction="both")


# ---------------------------------------------------------------------------------------------
# real-set cache

def test_real_set_cache_hit_and_invalidation(sets):
    real_dir, cache = sets["real_dir"], sets["cache"]
    (real_dir / "broken.png").write_bytes(b"not a png")  # skipped and counted, also on a cache hit
    net = FixedProjection()
    run = lambda metrics=fm.METRICS, n=net: fm.distribution_metrics(  # noqa: E731
        real_dir, sets["fake_dir"], metrics, feature=n, cache_dir=cache, kid_subset_size=20)

    first = run()
    assert net.images_seen == 40 + 30 and not first["real_from_cache"]
    assert first["real_count"] == 40 and len(first["real_skipped"]) == 1 and "broken.png" in first["real_skipped"][0]
    assert len(list(cache.glob("*.safetensors"))) == 1

    net.images_seen = 0
    second = run()
    assert net.images_seen == 30 and second["real_from_cache"]  # only the fake images went through
    for key in ("fid", "kid_mean", "kid_std", "mifid"):
        assert second[key] == pytest.approx(first[key], rel=1e-9, abs=1e-12)
    assert (second["real_count"], second["real_skipped"]) == (first["real_count"], first["real_skipped"])
    fid_only = run(("fid",))  # FID from the cached torchmetrics state, features not loaded
    assert fid_only["real_from_cache"] and fid_only["fid"] == pytest.approx(first["fid"], rel=1e-9)

    # another network: its own cache entry
    other = FixedProjection(seed=5)
    assert not run(n=other)["real_from_cache"] and other.images_seen == 70
    assert len(list(cache.glob("*.safetensors"))) == 2

    # a real image rewritten: recomputed, and the new numbers match the new contents
    changed = sets["real"].copy()
    changed[3] = 255 - changed[3]
    Image.fromarray(changed[3]).save(real_dir / "003.png")
    net.images_seen = 0
    third = run(("fid",))
    assert not third["real_from_cache"] and net.images_seen == 40 + 30
    assert third["fid"] == pytest.approx(np_fid(np_features(changed, net), np_features(sets["fake"], net)), rel=1e-6)
    assert third["fid"] != pytest.approx(first["fid"], rel=1e-6)
    assert run(("fid",))["real_from_cache"]
    assert len(list(cache.glob("*.safetensors"))) == 2  # rewritten in place, not accumulated


def test_cache_off_and_non_folder_inputs_are_not_cached(sets):
    net = FixedProjection()
    files = sorted(sets["real_dir"].glob("*.png"))
    for real, cache in ((sets["real_dir"], False), (files, True)):
        for _ in range(2):
            r = fm.distribution_metrics(real, sets["fake_dir"], ("fid",), feature=net, cache=cache,
                                        cache_dir=sets["cache"])
            assert not r["real_from_cache"]
    assert not sets["cache"].exists()


# ---------------------------------------------------------------------------------------------
# the FID Inception-v3 network and its weights

def _conv(name, cin, cout, kh, kw):
    return [(f"{name}.conv.weight", (cout, cin, kh, kw))] + [(f"{name}.bn.{p}", (cout,)) for p in
                                                             ("weight", "bias", "running_mean", "running_var")]


def _block(prefix, convs):
    return [kv for name, cin, cout, kh, kw in convs for kv in _conv(f"{prefix}.{name}", cin, cout, kh, kw)]


def expected_layout() -> dict[str, tuple]:
    """Keys and shapes of pt_inception-2015-12-05-6726825d.pth, from the published block structure
    (torchvision's Inception3 with 1008 classes and no aux head)."""
    def a(cin, pool):
        return [("branch1x1", cin, 64, 1, 1), ("branch5x5_1", cin, 48, 1, 1), ("branch5x5_2", 48, 64, 5, 5),
                ("branch3x3dbl_1", cin, 64, 1, 1), ("branch3x3dbl_2", 64, 96, 3, 3),
                ("branch3x3dbl_3", 96, 96, 3, 3), ("branch_pool", cin, pool, 1, 1)]

    def c(c7):
        return [("branch1x1", 768, 192, 1, 1), ("branch7x7_1", 768, c7, 1, 1), ("branch7x7_2", c7, c7, 1, 7),
                ("branch7x7_3", c7, 192, 7, 1), ("branch7x7dbl_1", 768, c7, 1, 1), ("branch7x7dbl_2", c7, c7, 7, 1),
                ("branch7x7dbl_3", c7, c7, 1, 7), ("branch7x7dbl_4", c7, c7, 7, 1),
                ("branch7x7dbl_5", c7, 192, 1, 7), ("branch_pool", 768, 192, 1, 1)]

    def e(cin):
        return [("branch1x1", cin, 320, 1, 1), ("branch3x3_1", cin, 384, 1, 1), ("branch3x3_2a", 384, 384, 1, 3),
                ("branch3x3_2b", 384, 384, 3, 1), ("branch3x3dbl_1", cin, 448, 1, 1),
                ("branch3x3dbl_2", 448, 384, 3, 3), ("branch3x3dbl_3a", 384, 384, 1, 3),
                ("branch3x3dbl_3b", 384, 384, 3, 1), ("branch_pool", cin, 192, 1, 1)]

    layout = []
    for name, cin, cout, k in [("Conv2d_1a_3x3", 3, 32, 3), ("Conv2d_2a_3x3", 32, 32, 3), ("Conv2d_2b_3x3", 32, 64, 3),
                               ("Conv2d_3b_1x1", 64, 80, 1), ("Conv2d_4a_3x3", 80, 192, 3)]:
        layout += _conv(name, cin, cout, k, k)
    layout += _block("Mixed_5b", a(192, 32)) + _block("Mixed_5c", a(256, 64)) + _block("Mixed_5d", a(288, 64))
    layout += _block("Mixed_6a", [("branch3x3", 288, 384, 3, 3), ("branch3x3dbl_1", 288, 64, 1, 1),
                                  ("branch3x3dbl_2", 64, 96, 3, 3), ("branch3x3dbl_3", 96, 96, 3, 3)])
    for name, c7 in [("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)]:
        layout += _block(name, c(c7))
    layout += _block("Mixed_7a", [("branch3x3_1", 768, 192, 1, 1), ("branch3x3_2", 192, 320, 3, 3),
                                  ("branch7x7x3_1", 768, 192, 1, 1), ("branch7x7x3_2", 192, 192, 1, 7),
                                  ("branch7x7x3_3", 192, 192, 7, 1), ("branch7x7x3_4", 192, 192, 3, 3)])
    layout += _block("Mixed_7b", e(1280)) + _block("Mixed_7c", e(2048))
    layout += [("fc.weight", (1008, 2048)), ("fc.bias", (1008,))]
    return dict(layout)


def stand_in_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights of the right keys and shapes, scaled so activations stay finite."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in expected_layout().items():
        if key.endswith("conv.weight") or key == "fc.weight":
            fan_in = int(np.prod(shape[1:]))
            state[key] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif key.endswith(("running_var", "bn.weight")):
            state[key] = 1.0 + 0.1 * torch.rand(shape, generator=g)
        else:
            state[key] = 0.1 * torch.randn(shape, generator=g)
    return state


@pytest.fixture
def one_thread():
    """The real network is ~6 GFLOPs per image; share the CPU politely."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_inception_layout_matches_the_weight_file():
    net = inc.FIDInceptionV3()
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    want = expected_layout()
    assert got == want
    assert len(want) == 94 * 5 + 2
    assert got["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3)
    assert got["Mixed_7c.branch_pool.conv.weight"] == (192, 2048, 1, 1)
    assert got["Mixed_7c.branch3x3dbl_3b.bn.running_var"] == (384,)
    # the FID network's differences from torchvision's Inception-v3
    assert {m.eps for m in net.modules() if isinstance(m, inc.FrozenBatchNorm2d)} == {0.001}
    assert (net.Mixed_7b.pool, net.Mixed_7c.pool) == ("avg", "max")
    ones = torch.ones(1, 1, 5, 5)
    assert torch.equal(inc._pool_3x3_same(ones, "avg"), ones)  # padded zeros not averaged in
    ramp = torch.arange(25.0).reshape(1, 1, 5, 5)
    assert inc._pool_3x3_same(ramp, "max")[0, 0, 0, 0] == 6.0


def test_inception_features_with_stand_in_weights(tmp_path, one_thread):
    path = tmp_path / "standin.pth"
    torch.save(stand_in_weights(), path)
    with pytest.warns(UserWarning, match="not the official"):
        net = inc.load_fid_inception(path)
    assert net.feature_id.startswith("fid-inception-v3:sha256=") and not net.training

    sizes = {}

    def record(name):
        def hook(module, inputs, output):
            sizes[name] = tuple(output.shape[1:])  # returns None: the output is left alone
        return hook
    hooks = [getattr(net, n).register_forward_hook(record(n)) for n in ("Mixed_5d", "Mixed_6e", "Mixed_7c")]
    x299 = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0))
    f299 = net(x299)
    for h in hooks:
        h.remove()
    assert sizes == {"Mixed_5d": (288, 35, 35), "Mixed_6e": (768, 17, 17), "Mixed_7c": (2048, 8, 8)}
    assert f299.shape == (2, 2048) and torch.isfinite(f299).all() and (f299 >= 0).all() and f299.std() > 0

    small = torch.rand(2, 3, 64, 80, generator=torch.Generator().manual_seed(1))
    f_small = net(small)
    assert f_small.shape == (2, 2048)
    resized = F.interpolate(small, size=(299, 299), mode="bilinear", align_corners=False)
    assert torch.allclose(f_small, net(resized), atol=1e-5)  # resized the way pytorch-fid does
    as_bytes = (small[:1] * 255).round().to(torch.uint8)
    assert torch.allclose(net(as_bytes), net(as_bytes.float() / 255), atol=1e-5)

    # the same weights read from .safetensors
    from safetensors.torch import save_file
    save_file(stand_in_weights(), str(tmp_path / "standin.safetensors"))
    with pytest.warns(UserWarning):
        from_safetensors = inc.load_fid_inception(tmp_path / "standin.safetensors")
    assert torch.allclose(from_safetensors(small[:1]), f_small[:1], atol=1e-6)


def test_distribution_metrics_with_the_inception_network(tmp_path, monkeypatch, one_thread):
    """Folder -> per-image resize to 299 -> Inception -> torchmetrics, with weights found
    through $PRISM_FID_WEIGHTS; the real folder's features are cached under that weight file's
    hash. KID only: FID at 2048-d spends ~10 s single-threaded in torchmetrics' eigvals, and its
    code path is the one tested above at 16-d."""
    path = tmp_path / "standin.pth"
    torch.save(stand_in_weights(), path)
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(path))
    rng = np.random.default_rng(3)
    real = write_folder(tmp_path / "real", random_images(rng, 3))
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(real / "wide.jpg")  # sizes may differ
    fake = write_folder(tmp_path / "fake", random_images(rng, 3, low=100))
    run = lambda: fm.distribution_metrics(real, fake, ("kid",), cache_dir=tmp_path / "cache",  # noqa: E731
                                          kid_subset_size=3)
    with pytest.warns(UserWarning, match="not the official"):
        first = run()
    assert first["real_count"] == 4 and first["fake_count"] == 3 and first["kid_subset_size"] == 3
    assert first["feature"] == f"fid-inception-v3:sha256={sha256(path)}"
    assert np.isfinite(first["kid_mean"]) and first["kid_mean"] != 0
    with pytest.warns(UserWarning, match="not the official"):
        second = run()
    assert second["real_from_cache"] and second["kid_mean"] == pytest.approx(first["kid_mean"], rel=1e-9)


def test_weight_loading_errors_and_lookup(tmp_path, monkeypatch):
    monkeypatch.delenv(inc.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(FileNotFoundError) as absent:
        inc.load_fid_inception()
    message = str(absent.value)
    for needle in (inc.WEIGHTS_FILENAME, inc.WEIGHTS_URL, "never downloads", inc.WEIGHTS_ENV,
                   str(tmp_path / "xdg" / "prism" / inc.WEIGHTS_FILENAME)):
        assert needle in message
    with pytest.raises(FileNotFoundError, match="given path"):
        inc.load_fid_inception(tmp_path / "nowhere.pth")
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(tmp_path / "gone.pth"))
    with pytest.raises(FileNotFoundError, match=r"\$PRISM_FID_WEIGHTS"):
        inc.load_fid_inception()

    broken = stand_in_weights()
    del broken["Mixed_6b.branch7x7_2.bn.running_mean"], broken["fc.bias"]
    broken["AuxLogits.fc.weight"] = torch.zeros(1008, 768)
    broken["Mixed_5b.branch_pool.conv.weight"] = torch.zeros(64, 192, 1, 1)
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(ValueError) as bad:
        inc.load_fid_inception(tmp_path / "broken.pth")
    for needle in ("missing keys (2)", "Mixed_6b.branch7x7_2.bn.running_mean", "fc.bias",
                   "unexpected keys (1): AuxLogits.fc.weight",
                   "Mixed_5b.branch_pool.conv.weight: file (64, 192, 1, 1), network (32, 192, 1, 1)"):
        assert needle in str(bad.value)

    # a copy re-saved from a torchvision-based module carries num_batches_tracked: accepted;
    # a folder given as the path (here via the environment) is searched for the official name
    extra = stand_in_weights()
    extra["Conv2d_1a_3x3.bn.num_batches_tracked"] = torch.tensor(0)
    (tmp_path / "w").mkdir()
    torch.save(extra, tmp_path / "w" / inc.WEIGHTS_FILENAME)
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(tmp_path / "w"))
    with pytest.warns(UserWarning, match="not the official"):
        net = inc.load_fid_inception()
    assert torch.equal(net.Conv2d_1a_3x3.conv.weight, extra["Conv2d_1a_3x3.conv.weight"])
