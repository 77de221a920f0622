"""Make the bundled colorizer from a training run: export (fp16), evaluate on the val photos, and
write the numbers, provenance and licence note into its model card.

    .venv/bin/python scripts/bundle_colorizer.py runs/00000-bundled-colorizer[/checkpoints/X.pt] \
        --val ../shared/data/colorization/intel-scenes/val [--render-size 256] \
        [--calibrate-on ../shared/data/colorization/intel-scenes/train --colourfulness-target 0.8]

--calibrate-on sets the card's chroma gain so the outputs' mean colourfulness on those (training)
photos is the target share of the photos' own; the val photos never influence it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from prism import metrics
from prism.data.images import list_images

from prism.evaluation import evaluate_colorizer, pil_to_chw, truth_and_gray
from prism.modelio import BUNDLED_DIR, CARD, licence_note, load_model, load_nets, save_model

def calibrate_chroma_gain(model, folder: str, target: float, count: int = 240) -> tuple[float, float]:
    """Gain g so that colourfulness(outputs at g) = target x colourfulness(photos), on `count` photos
    spread over `folder`. Colourfulness grows about linearly with the chroma scale; two secant
    steps absorb the gamut clipping. Returns (gain, reached ratio)."""
    files = list_images(folder)
    files = files[:: max(1, len(files) // count)][:count]
    pairs = [truth_and_gray(f) for f in files]  # colourless truths are left out, as in evaluation
    kept = [(t, g) for t, g in pairs if not metrics.colourless_reason(t, torch.from_numpy(g).permute(2, 0, 1))]
    print(f"chroma calibration: {len(pairs) - len(kept)} of {len(pairs)} photos left out ({metrics.COLOURLESS_RULE})")
    truths, grays = zip(*kept)
    truth_cf = float(torch.cat([metrics.colorfulness(t[None]) for t in truths]).mean())

    def ratio(gain: float) -> float:
        model.chroma_gain = gain
        outs = model.colorize_batch(list(grays))
        return float(torch.cat([metrics.colorfulness(pil_to_chw(o)[None]) for o in outs]).mean()) / truth_cf

    g0, r0 = 1.0, ratio(1.0)
    g1 = min(4.0, target / max(r0, 1e-3))
    r1 = ratio(g1)
    for _ in range(2):
        if abs(r1 - target) < 0.01 or r1 == r0:
            break
        g0, r0, g1 = g1, r1, min(4.0, max(0.1, g1 + (target - r1) * (g1 - g0) / (r1 - r0)))
        r1 = ratio(g1)
    return round(g1, 3), r1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("source", help="run directory or checkpoint file")
    p.add_argument("--val", required=True)
    p.add_argument("--name", default="colorizer")
    p.add_argument("--render-size", type=int, default=None)
    p.add_argument("--calibrate-on", default=None, help="folder of training photos for the chroma gain")
    p.add_argument("--colourfulness-target", type=float, default=0.8)
    p.add_argument("--notes", type=Path, default=None, help="a text file: the card's notes, one per paragraph")
    a = p.parse_args()
    out = BUNDLED_DIR / a.name
    nets, card = load_nets(a.source)
    if a.render_size:
        card["options"]["render_size"] = a.render_size
    card["license"] = licence_note(card["training"]["config"])
    card["name"] = a.name
    card["notes"] = [n.strip().replace("\n", " ") for n in a.notes.read_text().split("\n\n") if n.strip()] if a.notes else []
    save_model(out, nets, card, dtype=torch.float16)
    if a.calibrate_on:
        gain, reached = calibrate_chroma_gain(load_model(out), a.calibrate_on, a.colourfulness_target)
        card["options"]["chroma_gain"] = gain
        card["chroma_calibration"] = {"data": a.calibrate_on, "target_colourfulness_ratio": a.colourfulness_target,
                                      "reached": round(reached, 3), "gain": gain}
        print(f"chroma gain {gain} (colourfulness {reached:.2f} of the photos' on {a.calibrate_on})")
        save_model(out, nets, card, dtype=torch.float16)
    results = evaluate_colorizer(load_model(out), a.val)
    gain = card["options"].get("chroma_gain", 1.0)
    unscaled = evaluate_colorizer(load_model(out), a.val, saturation=1.0 / gain) if gain != 1.0 else results
    card = json.loads((out / CARD).read_text())
    rows = dict(results["rows"])
    if card["options"].get("chroma_gain", 1.0) != 1.0:  # what the calibration bought, on the same photos
        rows = {"model": rows.pop("model"), "model without chroma gain": unscaled["rows"]["model"], **rows}
    card["evaluation"] = {"data": a.val, "count": results["count"], "rows": rows,
                          "left_out": {k: results["left_out"][k] for k in ("count", "rule")},
                          "render_size": results["render_size"], "command": "prism eval colorize --model colorizer --data " + a.val}
    save_model(out, nets, card, dtype=torch.float16)
    print(json.dumps(rows, indent=1))
    print(f"bundled model written to {out} ({sum(f.stat().st_size for f in out.iterdir()) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
