"""OASIS on CamVid val, every number issue 19 asks for, for one or more models side by side:

- mIoU of the drawn photos under the project's segmenter, beside the real photos' (the ceiling),
  and their ratio;
- checkerboard and stripe indices (prism.artifacts; medians over images, with quartiles) of the
  drawn photos and of the real ones;
- seed diversity: mean absolute pixel difference (0..1) between seed 0 and seed 1 of each map,
  against the same for two real photos of one scene (consecutive val frames of the drive);
- the sky: mean CIE L*, a*, b* and chroma of the pixels the label calls sky, drawn vs real, and
  the share of drawn images whose sky is blown out (mean L* > 97);
- the Frechet distance and KID in ImageNet EfficientNet-Lite0 feature space (prism.fid.effnet_features).

With --probe, the stripe probe: each model draws three synthetic 192x256 maps (building under a
level sky line; under a slanted one; building only) at the network's own size, one row per model.
A generator with nothing but borders to make texture from paints streaks that start at the sky
line's steps and at the image edges (the zero padding); that is what the probe shows.

With --sheet, a contact sheet: label | each model at seed 0 (the last model also at seed 1) | real,
plus an enlarged crop of the first row. Everything at the label maps' own size (480x360).

    .venv/bin/python scripts/oasis_report.py OLD_MODEL NEW_MODEL --segmenter models/segment-camvid-cpu \
        [--data ../shared/data/semantic/camvid] [--sheet docs/oasis-camvid-contact-sheet.png] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from kornia.color import rgb_to_lab
from PIL import Image, ImageDraw

import prism
from prism.artifacts import checkerboard_index, stripe_index
from prism.evaluation import segment_tensor, labelled_set
from prism.fid.effnet_features import effnet_distances
from prism.metrics import mean_iou_metric


def chw(image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)


def quartiles(values) -> dict:
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3)}


def sky_stats(images: list[torch.Tensor], labels: list[torch.Tensor], sky: int) -> dict:
    lab, blown = [], 0
    for im, lb in zip(images, labels):
        mask = lb == sky
        if mask.sum() < 50:
            continue
        pixels = rgb_to_lab(im[None])[0][:, mask]  # (3, n)
        lab.append(pixels.mean(1))
        blown += int(pixels[0].mean() > 97)
    if not lab:
        return {}
    L, a, b = torch.stack(lab).mean(0).tolist()
    return {"L": L, "a": a, "b": b, "chroma": float(np.hypot(a, b)), "blown_out_share": blown / len(lab), "images": len(lab)}


def score(synth, samples, segmenter, reals) -> dict:
    n = synth.table.num_classes
    miou = mean_iou_metric(n)
    fakes0, fakes1 = [], []
    for s in samples:
        f0, f1 = (chw(synth.synthesize(s["label"], seed)) for seed in (0, 1))
        fakes0.append(f0)
        fakes1.append(f1)
        miou.update(segment_tensor(segmenter, f0), s["label"][None])
    out = {"miou": float(miou.compute()),
           "checkerboard": quartiles([checkerboard_index(f) for f in fakes0]),
           "stripe": quartiles([stripe_index(f) for f in fakes0]),
           "seed_difference": float(np.mean([(a - b).abs().mean() for a, b in zip(fakes0, fakes1)])),
           "sky": sky_stats(fakes0, [s["label"] for s in samples], synth.table.index_of("sky"))}
    hwc = [x.permute(1, 2, 0).numpy() for x in reals], [x.permute(1, 2, 0).numpy() for x in fakes0]
    out.update({k: v for k, v in effnet_distances(*hwc, cache=False).items() if k.startswith(("fd_", "kid_"))})
    return out, fakes0, fakes1


def contact_sheet(samples, table, columns: list[tuple[str, list]], path: Path, rows: int = 8) -> None:
    picks = np.linspace(0, len(samples) - 1, rows).round().astype(int)
    names = ["label"] + [c[0] for c in columns] + ["real photo"]
    h, w = samples[0]["label"].shape
    scale = 0.5  # 240x180 tiles: the sheet stays readable; the crop row is at 1:1
    th, tw = int(h * scale), int(w * scale)
    crop = (w // 4, h // 4, w // 4 + tw, h // 4 + th)  # a 1:1 window of the first row
    sheet = Image.new("RGB", (tw * len(names), 20 + th * (rows + 1)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, name in enumerate(names):
        draw.text((j * tw + 4, 4), name, fill="black")
    for r, i in enumerate(list(picks) + [picks[0]]):
        s = samples[i]
        tiles = [Image.fromarray((table.colourize(s["label"][None])[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))]
        tiles += [Image.fromarray((c[1][i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)) for c in columns]
        tiles.append(Image.fromarray((s["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)))
        for j, tile in enumerate(tiles):
            tile = tile.crop(crop) if r == rows else tile.resize((tw, th), Image.BICUBIC)
            sheet.paste(tile, (j * tw, 20 + r * th))
    draw.text((4, 20 + rows * th + 4), "1:1 crop of row 1", fill="yellow")
    sheet.save(path)


def probe_maps(sky: int, building: int, road: int, h: int = 192, w: int = 256) -> list[np.ndarray]:
    level = np.full((h, w), building)
    level[:60], level[170:] = sky, road
    slanted = np.full((h, w), building)
    slanted[np.arange(h)[:, None] < 20 + 0.35 * np.arange(w)[None, :]] = sky
    slanted[170:] = road
    return [level, slanted, np.full((h, w), building)]


def stripe_probe(synths: dict, path: Path) -> None:
    rows = []
    for synth in synths.values():
        t = synth.table
        maps = probe_maps(t.index_of("sky"), t.index_of("building"), t.index_of("road"))
        rows.append(np.concatenate([np.asarray(synth.synthesize(m, 0, render_size=None)) for m in maps], 1))
    sheet = Image.fromarray(np.concatenate(rows, 0))
    draw = ImageDraw.Draw(sheet)
    for i, name in enumerate(synths):
        draw.text((4, i * rows[0].shape[0] + 4), Path(name).name, fill="yellow")
    sheet.save(path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="+")
    p.add_argument("--segmenter", default="models/segment-camvid-cpu")
    p.add_argument("--data", type=Path, default=Path("../shared/data/semantic/camvid"))
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--sheet", type=Path)
    p.add_argument("--probe", type=Path, help="write the stripe probe picture here")
    p.add_argument("--json", type=Path)
    p.add_argument("--bilinear-probe", action="store_true",
                   help="also score each nearest-upsampling model with bilinear upsampling swapped in at inference "
                        "(same weights): does its texture come from nearest's 2x2 lattice?")
    a = p.parse_args()
    segmenter = prism.load_model(a.segmenter)
    synths = [prism.load_model(m) for m in a.models]
    if a.bilinear_probe:  # each probe right after its model; the last model keeps the seed-1 column
        probed = []
        for i, (name, synth) in enumerate(zip(a.models, synths)):
            probed.append((name, synth))
            if synth.G.upsample == "nearest" and i < len(a.models) - 1:
                swapped = prism.load_model(name)
                swapped.G.upsample = "bilinear"
                probed.append((f"{name} (bilinear at inference)", swapped))
        a.models, synths = [n for n, _ in probed], [s for _, s in probed]
    ds = labelled_set(synths[0].card, a.data / "val", a.data / "valannot")
    samples = [ds[i] for i in range(len(ds) if not a.limit else min(a.limit, len(ds)))]
    reals = [s["image"] for s in samples]
    miou = mean_iou_metric(synths[0].table.num_classes)
    for s in samples:
        miou.update(segment_tensor(segmenter, s["image"]), s["label"][None])
    real = {"miou": float(miou.compute()),
            "checkerboard": quartiles([checkerboard_index(r) for r in reals]),
            "stripe": quartiles([stripe_index(r) for r in reals]),
            "seed_difference": float(np.mean([(x - y).abs().mean() for x, y in zip(reals[:-1], reals[1:])])),
            "sky": sky_stats(reals, [s["label"] for s in samples], synths[0].table.index_of("sky"))}
    report, columns = {"images": len(samples), "real photos": real}, []
    for name, synth in zip(a.models, synths):
        r, f0, f1 = score(synth, samples, segmenter, reals)
        r["miou_ratio"] = r["miou"] / real["miou"]
        r["checkerboard_ratio"] = r["checkerboard"]["median"] / real["checkerboard"]["median"]
        r["stripe_ratio"] = r["stripe"]["median"] / real["stripe"]["median"]
        report[name] = r
        columns.append((f"{Path(name).name}, seed 0", f0))
    columns.append((f"{Path(a.models[-1]).name}, seed 1", f1))
    print(f"CamVid val, {len(samples)} label maps at 480x360 (real: the val photos; their 'seed difference' is "
          "consecutive frames of one drive)")
    keys = ["miou", "miou_ratio", "checkerboard", "checkerboard_ratio", "stripe", "stripe_ratio", "seed_difference",
            "fd_effnet_lite0", "kid_effnet_lite0"]
    print(f"{'':34}" + "".join(f"{k:>19}" for k in keys))
    for name, r in report.items():
        if name == "images":
            continue
        cells = [r.get(k) for k in keys]
        print(f"{Path(name).name:34}" + "".join(f"{(c['median'] if isinstance(c, dict) else c):>19.4g}"
                                                 if c is not None else f"{'-':>19}" for c in cells))
    for name, r in report.items():
        if name != "images" and r.get("sky"):
            s = r["sky"]
            print(f"sky, {Path(name).name}: L* {s['L']:.1f} a* {s['a']:.1f} b* {s['b']:.1f} chroma {s['chroma']:.1f}, "
                  f"blown out (mean L* > 97) in {s['blown_out_share']:.0%} of {s['images']} images")
    if a.sheet:
        contact_sheet(samples, synths[0].table, columns, a.sheet)
        print(f"contact sheet: {a.sheet}")
    if a.probe:
        stripe_probe(dict(zip(a.models, synths)), a.probe)
        print(f"stripe probe: {a.probe}")
    if a.json:
        a.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
