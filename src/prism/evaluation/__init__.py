"""Evaluation loops behind `prism eval TASK`, one home for all tasks: colorize, segment and oasis
here, the translators (CycleGAN, pix2pix) in prism.evaluation.translation. The metric math lives in
prism.metrics and prism.fid; tasks import these loops, never the other way round."""
from __future__ import annotations

import resource
import time

import numpy as np
import torch
from rich.progress import Progress

from prism import color, metrics
from prism.data.images import ImageReadError, list_images, read_image
from prism.data.labels import IGNORE
from prism.metrics import mean_iou_metric


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def truth_and_gray(path) -> tuple[torch.Tensor, np.ndarray]:
    """A ground-truth photo as (3,H,W) floats, and the input a colorizer is scored on: the same
    lightness with no colour, as (H,W,3) floats."""
    truth = torch.from_numpy(read_image(path).rgb).permute(2, 0, 1)
    return truth, np.ascontiguousarray(color.gray_rgb(truth[None])[0].permute(1, 2, 0).numpy())


def pil_to_chw(image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)


def evaluate_colorizer(colorizer, data, limit: int = 0, batch_size: int = 16, progress: bool = True,
                       saturation: float = 1.0, files=None) -> dict:
    """Colorize the lightness of every ground-truth photo in `data` (or the given `files`) and
    score the result beside the plain gray image (same lightness, no colour) as a baseline, each
    image at its own resolution. Truths with no colour to predict are left out and counted
    (prism.metrics.COLOURLESS_RULE); PSNR is given as the mean of per-image values, their median
    and from the pooled MSE; `beats_gray` is the share of images where the model's PSNR is higher."""
    files = list(files) if files is not None else list_images(data)[: limit or None]
    scores = {"model": metrics.ColorizationScore(), "gray baseline": metrics.ColorizationScore()}
    truth_cf, wins, left_out, skipped, seconds = [], 0, [], [], 0.0
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("evaluating", total=len(files))
        for start in range(0, len(files), batch_size):
            truths, grays = [], []
            for f in files[start:start + batch_size]:
                try:
                    truth, gray = truth_and_gray(f)
                except ImageReadError as e:
                    skipped.append(f"{e.path}: {e.reason}")
                    continue
                reason = metrics.colourless_reason(truth, torch.from_numpy(gray).permute(2, 0, 1))
                if reason:
                    left_out.append(f"{f}: {reason}")
                    continue
                truths.append(truth)
                grays.append(gray)
            t0 = time.perf_counter()
            outs = colorizer.colorize_batch(grays, saturation, batch_size=batch_size) if grays else []
            seconds += time.perf_counter() - t0
            for truth, gray, out in zip(truths, grays, outs):
                ours = scores["model"].add(pil_to_chw(out), truth)
                base = scores["gray baseline"].add(torch.from_numpy(gray).permute(2, 0, 1), truth)
                wins += ours["psnr"] > base["psnr"]
                truth_cf.append(float(metrics.colorfulness(truth[None])))
            bar.update(task, advance=len(files[start:start + batch_size]))
    n = len(truth_cf)
    cf = float(np.mean(truth_cf)) if n else float("nan")
    rows = {name: score.summary() for name, score in scores.items()}
    rows["model"]["beats_gray"] = wins / n if n else float("nan")
    rows["ground truth"] = {"psnr": float("inf"), "ssim": 1.0, "ciede2000": 0.0, "colorfulness": cf, "neutral_cast": 0.0}
    for row in rows.values():
        row["colorfulness_ratio"] = row.get("colorfulness", float("nan")) / cf if cf else float("nan")
    notes = [f"{len(left_out)} of {len(files) - len(skipped)} truth(s) left out: {metrics.COLOURLESS_RULE}"] if left_out else []
    return {
        "task": "colorize", "data": str(data), "count": n, "rows": rows,
        "left_out": {"count": len(left_out), "rule": metrics.COLOURLESS_RULE, "files": left_out},
        "images_per_s": round(n / seconds, 2) if seconds else None,
        "peak_rss_mb": round(peak_rss_mb(), 1), "render_size": colorizer.render_size, "saturation": saturation,
        "model": model_name(colorizer), "skipped": skipped, **({"notes": notes} if notes else {}),
    }


# --- label maps: segmentation and semantic synthesis ---------------------------------------------------
def model_name(predictor) -> str:
    """The model as the user named it when loading it (a path or a bundled name), else its card's name."""
    card = predictor.card
    return getattr(predictor, "source", None) or card.get("name") or card.get("training", {}).get("run", "?")


def labelled_set(card: dict, data, labels=None, instances: bool = False):
    """The label maps (and photos, when there are) of `data` / `labels`, read the way the model's
    training data was (its format, class table, tolerance), each at its own size."""
    from prism.data.images import DEFAULT_MAX_PIXELS
    from prism.data.labels import ClassTable
    from prism.tasks.label_data import label_dataset
    opts = card["options"]
    d = {"format": opts["format"], "tolerance": opts.get("tolerance", 50.0), "label_side": opts.get("label_side", "right"),
         "instances": instances, "load_size": None, "crop": None, "flip": False, "max_pixels": DEFAULT_MAX_PIXELS}
    return label_dataset(d, ClassTable.from_dict(opts["classes"]), opts.get("decoding", "ids"), data, labels,
                         train=False, where="--labels")


def _labelled_samples(ds, limit: int, progress: bool, what: str):
    """Yield the samples one at a time (sizes may differ), with a progress bar."""
    n = min(limit, len(ds)) if limit else len(ds)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(what, total=n)
        for i in range(n):
            yield ds[i]
            bar.update(task, advance=1)


def segment_tensor(segmenter, image) -> torch.Tensor:
    """(1,H,W) predicted classes of a PIL image or a (3,H,W) float photo."""
    if isinstance(image, torch.Tensor):
        image = image.permute(1, 2, 0).numpy()
    return torch.from_numpy(segmenter.segment(image))[None]


def evaluate_segmenter(segmenter, data, labels=None, limit: int = 0, batch_size: int = 16,
                       progress: bool = True) -> dict:
    """mIoU (prism.metrics.mean_iou_metric) and pixel accuracy of a segmenter on photos with
    their label maps, at the label maps' own size."""
    ds = labelled_set(segmenter.card, data, labels)
    if not ds.has_photos:
        raise ValueError(f"{data}: label maps without photos; a segmenter is scored on photos")
    miou, hits, labelled, skipped, seconds, n = mean_iou_metric(segmenter.table.num_classes), 0, 0, [], 0.0, 0
    for sample in _labelled_samples(ds, limit, progress, "segmenting"):
        skipped += sample["skipped"]
        t0 = time.perf_counter()
        pred = segment_tensor(segmenter, sample["image"])
        seconds += time.perf_counter() - t0
        truth = sample["label"][None]
        miou.update(pred, truth)
        valid = truth != IGNORE
        hits, labelled, n = hits + int(((pred == truth) & valid).sum()), labelled + int(valid.sum()), n + 1
    return {"task": "segment", "data": str(data), "count": n,
            "rows": {"segmenter": {"miou": float(miou.compute()), "pixel_acc": hits / max(labelled, 1)}},
            "images_per_s": round(n / seconds, 2) if seconds else None, "peak_rss_mb": round(peak_rss_mb(), 1),
            "render_size": segmenter.render_size, "model": model_name(segmenter), "skipped": skipped}


def evaluate_synthesis(synth, data, labels=None, segmenter=None, inception_weights=None, seed: int = 0,
                       limit: int = 0, batch_size: int = 16, progress: bool = True, fid_feature=None) -> dict:
    """The semantic-synthesis protocol: a photo is drawn from every label map (noise `seed`), then
      - mIoU: `segmenter` (a segment model trained on real photos of the same classes) labels it,
        scored against the input label map; beside it, the segmenter's mIoU on the real photos
        (the ceiling: what it reaches on the kind of image it was trained on);
      - FID of the drawn photos against the real ones (prism.fid, torchmetrics), when the FID
        Inception weights are given or found ($PRISM_FID_WEIGHTS, the cache; for tests, another
        `fid_feature` network); otherwise the same Frechet distance in ImageNet EfficientNet-Lite0
        feature space (`fd_effnet_lite0`), with a note saying how to get the Inception file.
    Everything at the label maps' own size."""
    from prism.fid.metrics import (FeatureSet, extract_features, feature_identity, fid_from_features, named_scores,
                                   optional_feature_network)
    if segmenter is not None and segmenter.table.names != synth.table.names:
        raise ValueError(f"the segmenter's classes ({', '.join(segmenter.table.names)}) are not the synthesis "
                         f"model's ({', '.join(synth.table.names)})")
    ds = labelled_set(synth.card, data, labels, synth.edges)
    fid_net, notes = None, []
    if ds.has_photos:
        fid_net = optional_feature_network(fid_feature or "inception", inception_weights, synth.device, notes)
    elif inception_weights is not None or fid_feature is not None:
        raise ValueError(f"{data}: label maps without photos; FID needs the real photos")
    if segmenter is None and fid_net is None:
        raise ValueError(f"{data}: label maps without photos, so no distribution score; give --segmenter SEG_MODEL "
                         "(for mIoU)")
    num_classes = synth.table.num_classes
    fake_miou, real_miou = mean_iou_metric(num_classes), mean_iou_metric(num_classes)
    features: dict[str, list] = {"fake": [], "real": []}
    pending: dict[str, list] = {"fake": [], "real": []}  # images waiting for a batched FID feature pass

    def flush():
        for kind, images in pending.items():
            if images:
                features[kind].append(extract_features(images, fid_net, batch_size).features)
                images.clear()

    skipped, seconds, n = [], 0.0, 0
    for sample in _labelled_samples(ds, limit, progress, "synthesizing"):
        skipped += sample["skipped"]
        t0 = time.perf_counter()
        fake = synth.synthesize(sample["label"], seed, instance=sample.get("instance"))
        seconds += time.perf_counter() - t0
        if segmenter is not None:
            fake_miou.update(segment_tensor(segmenter, fake), sample["label"][None])
            if "image" in sample:
                real_miou.update(segment_tensor(segmenter, sample["image"]), sample["label"][None])
        if fid_net is not None:
            pending["fake"].append(np.asarray(fake))
            pending["real"].append(sample["image"].permute(1, 2, 0).numpy())
            if len(pending["fake"]) >= batch_size:
                flush()
        n += 1
    rows: dict[str, dict] = {f"synthesized (seed {seed})": {}}
    if segmenter is not None:
        rows[f"synthesized (seed {seed})"]["miou"] = float(fake_miou.compute())
        if ds.has_photos:
            rows["real photos"] = {"miou": float(real_miou.compute())}
    extra = {"segmenter": model_name(segmenter)} if segmenter is not None else {}
    if fid_net is not None:
        if n < 2:
            raise ValueError(f"FID needs at least 2 images, got {n}")
        flush()
        real, fake = (FeatureSet(n, torch.cat(features[k])) for k in ("real", "fake"))
        rows[f"synthesized (seed {seed})"].update(named_scores(fid_net, {"fid": fid_from_features(real, fake)}))
        extra["fid_feature"] = feature_identity(fid_net)
    return {"task": "oasis", "data": str(data), "count": n, "rows": rows,
            "images_per_s": round(n / seconds, 2) if seconds else None, "peak_rss_mb": round(peak_rss_mb(), 1),
            "render_size": synth.render_size, "model": model_name(synth), **extra, "skipped": skipped,
            **({"notes": notes} if notes else {})}
