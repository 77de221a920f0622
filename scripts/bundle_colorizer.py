"""Make the bundled colorizer from a training run: export (fp16), evaluate on the val photos, and
write the numbers, provenance and licence note into its model card.

    .venv/bin/python scripts/bundle_colorizer.py runs/00000-bundled-colorizer[/checkpoints/X.pt] \
        --val ../shared/data/colorization/intel-scenes/val [--render-size 256]
"""
from __future__ import annotations

import argparse
import json
import torch

from prism.evaluation import evaluate_colorizer
from prism.modelio import BUNDLED_DIR, CARD, load_model, load_nets, save_model

LICENCE = ("Weights trained by PRISM from scratch on research-use data: Intel Image Classification "
           "scenes (licence unclear, research use) and the photos of Kaggle's 'I'm Something of a "
           "Painter Myself' competition (competition data). Use for research and personal photos; "
           "the training data's terms apply to the weights.")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("source", help="run directory or checkpoint file")
    p.add_argument("--val", required=True)
    p.add_argument("--name", default="colorizer")
    p.add_argument("--render-size", type=int, default=None)
    a = p.parse_args()
    out = BUNDLED_DIR / a.name
    nets, card = load_nets(a.source)
    if a.render_size:
        card["options"]["render_size"] = a.render_size
    card["license"] = LICENCE
    card["name"] = a.name
    save_model(out, nets, card, dtype=torch.float16)
    results = evaluate_colorizer(load_model(out), a.val)
    card = json.loads((out / CARD).read_text())
    card["evaluation"] = {"data": a.val, "count": results["count"], "rows": results["rows"],
                          "render_size": results["render_size"], "command": "prism eval colorize --model colorizer --data " + a.val}
    save_model(out, nets, card, dtype=torch.float16)
    print(json.dumps(results["rows"], indent=1))
    print(f"bundled model written to {out} ({sum(f.stat().st_size for f in out.iterdir()) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
