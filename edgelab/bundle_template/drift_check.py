"""Drift check: does a window of camera images still look like the data the model was made for?

Standalone (numpy + Pillow, Python 3.7+): ``classify.py --drift IMAGES...`` runs it on the device,
and edgelab's host command ``edgelab drift BUNDLE IMAGES_DIR`` imports this same file, so both
compute the same features, scores and verdicts.

What is compared (``reference.json`` in the bundle holds the reference side, a few kilobytes):

- per image, on the pixels the model sees (resized to its input): brightness (mean grey level,
  the channel mean), contrast (its standard deviation), sharpness (mean absolute Laplacian over
  contrast), noise (median absolute Laplacian), saturation (mean HSV saturation); all but the last
  are unchanged by a swap of the colour channels. And the model's confidence
  (top-1 score). Each is binned at the reference deciles and scored with the population stability
  index (PSI) of the window against the reference;
- pooled over the window: the per-channel intensity histograms (R, G, B; 32 bins each), the hue
  histogram weighted by chroma (12 bins), and the class mix of the predictions, each by PSI.

Every signal has its own threshold, calibrated on windows drawn from held-out halves of the
reference images (see ``reference.json`` -> ``calibration``): the thresholds are set so that a
window of the reference distribution raises an alarm on any signal with the stated false-alarm rate.
A signal's score is its PSI divided by its threshold, so 1.0 is the line for every signal, and the
window's score is the largest signal score.
"""

import json
import math
import os

REFERENCE_FORMAT = "edgelab-drift-reference"
REFERENCE_VERSION = 1
MIN_IMAGES = 30  # fewer images than this: too few to tell drift from chance

#: per-image scalar features, in column order of image_stats()["features"]
FEATURES = ("brightness", "contrast", "sharpness", "noise", "saturation")
#: every signal, in report order
SIGNALS = FEATURES + ("channels", "colour", "confidence", "class_mix")
CHANNEL_BINS = 32
HUE_BINS = 12
_EPS = 1e-4  # probability floor of the pooled histograms


class DriftError(Exception):
    """A problem the user can fix (bad reference, too few images); printed as one line."""


# ------------------------------------------------------------------------------------------
# Per-image statistics
# ------------------------------------------------------------------------------------------


def load_pixels(path, size):
    """An image file as the model sees it: RGB uint8 (height, width, 3), resized bilinearly."""
    import numpy as np
    from PIL import Image

    height, width = int(size[0]), int(size[1])
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            if img.size != (width, height):  # as classify.py: convert, then resize
                img = img.resize((width, height), getattr(Image, "Resampling", Image).BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise DriftError("cannot read image {}: {}".format(path, exc))


def resize_pixels(pixels, size):
    """uint8 (H, W, 3) -> uint8 (size[0], size[1], 3) with Pillow's bilinear filter (as classify.py)."""
    import numpy as np
    from PIL import Image

    height, width = int(size[0]), int(size[1])
    pixels = np.asarray(pixels, dtype=np.uint8)
    if pixels.shape[:2] == (height, width):
        return pixels
    img = Image.fromarray(pixels).resize((width, height), getattr(Image, "Resampling", Image).BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def image_stats(pixels):
    """Statistics of one uint8 (H, W, 3) image: scalar features, channel and hue histograms."""
    import numpy as np

    pixels = np.asarray(pixels, dtype=np.uint8)
    r, g, b = pixels.transpose(2, 0, 1).astype(np.float32)  # channel planes: fast element-wise maths
    luma = (r + g + b) / 3.0  # the plain channel mean: the same whatever the channel order
    contrast = float(luma.std())
    lap = np.abs(4 * luma[1:-1, 1:-1] - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2] - luma[1:-1, 2:])
    mx = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    chroma = mx - mn
    saturation = float(np.mean(chroma / np.maximum(mx, 1.0)))
    features = [float(luma.mean()), contrast, float(lap.mean()) / (contrast + 1.0), float(np.median(lap)), saturation]

    count = float(pixels.shape[0] * pixels.shape[1])
    shift = 8 - int(round(math.log(CHANNEL_BINS, 2)))
    channels = np.stack(
        [np.bincount((pixels[..., c] >> shift).ravel(), minlength=CHANNEL_BINS) for c in range(3)]
    ) / count

    safe = np.where(chroma > 0, chroma, 1.0)
    hue = np.where(mx == r, ((g - b) / safe) % 6.0, np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    bins = np.minimum((hue / 6.0 * HUE_BINS).astype(np.int64), HUE_BINS - 1)
    colour = np.bincount(bins.ravel(), weights=(chroma / 255.0).ravel(), minlength=HUE_BINS) / count
    return {"features": features, "channels": channels, "colour": colour}


def stack_stats(per_image, scores):
    """Per-image statistics and model scores -> the arrays a window is scored from."""
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != len(per_image):
        raise DriftError("expected one row of model scores per image, got shape {}".format(scores.shape))
    return {
        "features": np.array([s["features"] for s in per_image], dtype=np.float64).reshape(len(per_image), -1),
        "channels": np.array([s["channels"] for s in per_image], dtype=np.float64),
        "colour": np.array([s["colour"] for s in per_image], dtype=np.float64),
        "confidence": scores.max(axis=1) if len(scores) else np.zeros(0),
        "predicted": scores.argmax(axis=1) if len(scores) else np.zeros(0, dtype=np.int64),
        "num_classes": int(scores.shape[1]),
    }


def take(stats, index):
    """The statistics of a subset of images (a window drawn for calibration)."""
    out = dict(stats)
    for key in ("features", "channels", "colour", "confidence", "predicted"):
        out[key] = stats[key][index]
    return out


# ------------------------------------------------------------------------------------------
# Summaries (the reference) and the population stability index
# ------------------------------------------------------------------------------------------


def _binned(values, edges):
    import numpy as np

    return np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")


def summarize_values(values):
    """Decile bins of a reference feature: edges, the reference share per bin, a few quantiles."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    edges = np.unique(np.quantile(values, np.linspace(0.1, 0.9, 9)))
    counts = np.bincount(_binned(values, edges), minlength=len(edges) + 1)
    q = np.quantile(values, [0.05, 0.1, 0.5, 0.9, 0.95])
    return {
        "edges": [round(float(e), 6) for e in edges],
        "probs": [round(float(c) / len(values), 6) for c in counts],
        "q05": float(q[0]),
        "q10": float(q[1]),
        "median": float(q[2]),
        "q90": float(q[3]),
        "q95": float(q[4]),
    }


def summarize(stats, labels):
    """The reference summary (JSON-ready) of the statistics of the reference images."""
    import numpy as np

    n = len(stats["confidence"])
    mix = np.bincount(stats["predicted"], minlength=stats["num_classes"]) / float(n)
    return {
        "format": REFERENCE_FORMAT,
        "format_version": REFERENCE_VERSION,
        "images": n,
        "features": {name: summarize_values(stats["features"][:, i]) for i, name in enumerate(FEATURES)},
        "channels": {"bins": CHANNEL_BINS, "probs": _rounded(stats["channels"].mean(axis=0))},
        "colour": {"bins": HUE_BINS, "probs": _rounded(_normalised(stats["colour"].mean(axis=0)))},
        "confidence": summarize_values(stats["confidence"]),
        "class_mix": {"labels": list(labels), "probs": _rounded(mix)},
    }


def _rounded(array):
    import numpy as np

    return np.round(np.asarray(array, dtype=np.float64), 6).tolist()


def _normalised(p):
    import numpy as np

    p = np.maximum(np.asarray(p, dtype=np.float64), _EPS)
    return p / p.sum(axis=-1, keepdims=True)


def psi(expected, actual):
    """Population stability index sum((a - e) * ln(a / e)) over the last axis (probabilities)."""
    import numpy as np

    e, a = _normalised(expected), _normalised(actual)
    return float(np.mean(np.sum((a - e) * np.log(a / e), axis=-1)))


def _count_psi(ref_probs, ref_images, values_binned, bins):
    """PSI of a window's bin counts against the reference shares, both smoothed by half a count."""
    import numpy as np

    counts = np.bincount(values_binned, minlength=bins)[:bins].astype(np.float64)
    expected = (np.asarray(ref_probs, dtype=np.float64) * ref_images + 0.5) / (ref_images + 0.5 * bins)
    actual = (counts + 0.5) / (counts.sum() + 0.5 * bins)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def raw_scores(reference, stats):
    """PSI of every signal for one window, {signal: psi}."""
    import numpy as np

    ref_n = int(reference["images"])
    out = {}
    for i, name in enumerate(FEATURES):
        summary = reference["features"][name]
        out[name] = _count_psi(
            summary["probs"], ref_n, _binned(stats["features"][:, i], summary["edges"]), len(summary["probs"])
        )
    out["channels"] = psi(reference["channels"]["probs"], stats["channels"].mean(axis=0))
    out["colour"] = psi(reference["colour"]["probs"], stats["colour"].mean(axis=0))
    summary = reference["confidence"]
    out["confidence"] = _count_psi(
        summary["probs"], ref_n, _binned(stats["confidence"], summary["edges"]), len(summary["probs"])
    )
    mix = reference["class_mix"]["probs"]
    out["class_mix"] = _count_psi(mix, ref_n, np.asarray(stats["predicted"], dtype=np.int64), len(mix))
    return out


# ------------------------------------------------------------------------------------------
# The verdict
# ------------------------------------------------------------------------------------------


def threshold_for(calibration, signal, n):
    """The PSI threshold of ``signal`` for a window of ``n`` images.

    Thresholds are calibrated at a few window sizes; between them they are interpolated linearly
    in 1/n (PSI under no drift shrinks like 1/n); windows larger than the largest calibrated size
    use its threshold (conservative: fewer alarms than the stated rate).
    """
    sizes = [int(s) for s in calibration["sizes"]]
    values = [float(v) for v in calibration["thresholds"][signal]]
    if n >= sizes[-1]:
        return values[-1]
    if n <= sizes[0]:
        return values[0]
    for (s0, v0), (s1, v1) in zip(zip(sizes, values), zip(sizes[1:], values[1:])):
        if s0 <= n <= s1:
            t = (1.0 / n - 1.0 / s0) / (1.0 / s1 - 1.0 / s0)
            return v0 + t * (v1 - v0)
    return values[-1]


def _direction(summary, value, low_words, high_words):
    if value < summary["q10"]:
        return "{} far below training".format(low_words) if low_words else None
    if value < summary["median"]:
        return "{} below training".format(low_words) if low_words else None
    if value > summary["q90"]:
        return "{} far above training".format(high_words) if high_words else None
    return "{} above training".format(high_words) if high_words else None


def _channels_swapped(reference, stats):
    """True when exchanging R and B brings the window's colours much closer to the reference."""
    ref = reference["channels"]["probs"]
    window = stats["channels"].mean(axis=0)
    return psi(ref, window[::-1]) < 0.5 * psi(ref, window)


def describe(reference, stats, signal):
    """What moved, in words, for a signal that crossed its threshold."""
    import numpy as np

    if signal in FEATURES:
        value = float(np.median(stats["features"][:, FEATURES.index(signal)]))
        summary = reference["features"][signal]
        low = value < summary["median"]
        if signal == "brightness":
            return _direction(summary, value, "brightness", "brightness")
        if signal == "contrast":
            return _direction(summary, value, "contrast", "contrast")
        if signal == "sharpness":
            return "images blurrier than training (defocus, motion?)" if low else \
                "images busier than training (noise, snow?)"
        if signal == "noise":
            return "less fine texture than training (compression, smoothing?)" if low else \
                "more pixel noise than training (sensor noise, snow?)"
        return "colours washed out" if low else "colours more saturated than training"
    if signal in ("channels", "colour"):
        if _channels_swapped(reference, stats):
            return "colour channels swapped?"
        return "colour balance unlike training" if signal == "channels" else "hues unlike training"
    if signal == "confidence":
        value = float(np.median(stats["confidence"]))
        summary = reference["confidence"]
        if value < summary["q10"]:
            return "predictions much less confident"
        return "predictions less confident" if value < summary["median"] else "predictions more confident"
    mix = reference["class_mix"]
    counts = np.bincount(stats["predicted"], minlength=len(mix["probs"]))
    top = int(counts.argmax())
    return "class mix unlike training ({} {:.0%} of predictions, {:.0%} in training)".format(
        mix["labels"][top], counts[top] / float(counts.sum()), mix["probs"][top])


def check(reference, stats):
    """The verdict for one window: the JSON-ready dict and the sentences of the moved signals.

    Returns:
        ``({"drift", "score", "threshold", "images", "signals": [{"name", "score", "drift"}]}, messages)``.
        Signal scores are PSI / threshold (1.0 is the line); the window's score is the largest.

    Raises:
        DriftError: fewer than MIN_IMAGES images.
    """
    n = len(stats["confidence"])
    if n < MIN_IMAGES:
        raise DriftError(
            "{} images are too few to tell drift from chance: give at least {} (the thresholds are "
            "calibrated for windows of {} to {} images)".format(
                n, MIN_IMAGES, reference["calibration"]["sizes"][0], reference["calibration"]["sizes"][-1])
        )
    if stats["num_classes"] != len(reference["class_mix"]["probs"]):
        raise DriftError("the model gives {} scores but the reference has {} classes".format(
            stats["num_classes"], len(reference["class_mix"]["probs"])))
    raw = raw_scores(reference, stats)
    signals = []
    messages = []
    for name in SIGNALS:
        score = raw[name] / threshold_for(reference["calibration"], name, n)
        drift = score > 1.0
        signals.append({"name": name, "score": round(score, 4), "drift": drift})
        if drift:
            text = describe(reference, stats, name)
            if text not in messages:
                messages.append(text)
    worst = max(s["score"] for s in signals)
    verdict = {"drift": bool(worst > 1.0), "score": worst, "threshold": 1.0, "images": n, "signals": signals}
    return verdict, messages


def report(verdict, messages):
    """The verdict as text: one line, then the moved signals."""
    head = "drift: {} (score {:.2f}, threshold {:.2f}, {} images)".format(
        "YES" if verdict["drift"] else "no", verdict["score"], verdict["threshold"], verdict["images"])
    lines = [head]
    if verdict["drift"]:
        lines.extend("  - " + m for m in messages)
    else:
        lines.append("  every signal within its calibrated range")
    return "\n".join(lines)


def load_reference(bundle_dir, meta):
    """The bundle's reference.json (named in bundle.json), checked."""
    name = meta.get("reference")
    if not name:
        raise DriftError("this bundle has no reference statistics: export it with a reference "
                         "(edgelab export-bundle --reference DIR)")
    try:
        with open(os.path.join(bundle_dir, name), encoding="utf-8") as fh:
            reference = json.load(fh)
    except (OSError, ValueError) as exc:
        raise DriftError("cannot read the reference {}: {}".format(name, exc))
    if not isinstance(reference, dict) or reference.get("format") != REFERENCE_FORMAT:
        raise DriftError("{} is not an edgelab drift reference".format(name))
    if int(reference.get("format_version", 0)) > REFERENCE_VERSION:
        raise DriftError("{} has format version {}; this drift_check.py reads up to {}".format(
            name, reference.get("format_version"), REFERENCE_VERSION))
    return reference


def run(image_paths, bundle_dir, meta, predict, as_json=False, out=None):
    """``classify.py --drift``: read the images, score them with ``predict(path) -> scores``, print.

    Returns the exit code (0 whether or not there is drift: the verdict is the output).
    """
    import sys

    out = out or sys.stdout
    reference = load_reference(bundle_dir, meta)
    if len(image_paths) < MIN_IMAGES:
        raise DriftError("{} images are too few to tell drift from chance: give at least {}".format(
            len(image_paths), MIN_IMAGES))
    size = reference["image_size"]
    per_image = [image_stats(load_pixels(p, size)) for p in image_paths]
    scores = [predict(p) for p in image_paths]
    verdict, messages = check(reference, stack_stats(per_image, scores))
    if as_json:
        out.write(json.dumps(verdict) + "\n")
    else:
        out.write(report(verdict, messages) + "\n")
    return 0


def main(args, meta, classify):
    """``classify.py --drift``: the bundle's reference model over the images, then the verdict."""
    import sys

    try:
        reference = load_reference(args.bundle, meta)
        path, _ = classify.pick_model(meta, args.bundle, args.model or reference.get("model"))
        edgetpu = classify.is_edgetpu_model(path)
        interpreter, _ = classify.make_interpreter(path, edgetpu, args.device, args.threads, args.runtime)
        interpreter.allocate_tensors()
        input_index = interpreter.get_input_details()[0]["index"]

        def predict(image_path):
            interpreter.set_tensor(input_index, classify.preprocess(image_path, interpreter, meta))
            interpreter.invoke()
            return classify.scores_of(interpreter)

        return run(args.images, args.bundle, meta, predict, as_json=args.json)
    except DriftError as exc:
        print("classify.py: error: {}".format(exc), file=sys.stderr)
        return 2
