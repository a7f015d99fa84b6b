#!/usr/bin/env python3
"""Classify images with a model from this bundle. Standalone: numpy, Pillow and a TFLite runtime.

    python3 classify.py photo.jpg [more.jpg ...] [--model NAME] [--top-k 3] [--device usb:0] [--threads 4]
    python3 classify.py --bench [--manifest images.json]    # latency and answers on this device (device_bench.py)

Reads bundle.json and labels.txt next to this file. Runtimes tried, first found wins:
  plain models:        ai_edge_litert (LiteRT) -> tflite_runtime -> tensorflow.lite
  *_edgetpu.tflite:    pycoral -> tflite_runtime -> ai_edge_litert -> tensorflow.lite, with the
                       Edge TPU delegate (libedgetpu). Coral's own stack comes first because
                       TFLite runtimes newer than 2.11.1 crash with the stock libedgetpu 16
                       (google-coral/edgetpu#812).
Written for Python 3.6+ so that it also runs on old device images (Coral Dev Board, pycoral 2.0).
"""

import argparse
import ctypes
import json
import os
import platform
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DELEGATE_LIBRARIES = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}
NO_RUNTIME = (
    "no TFLite runtime found. Install one of: `pip install ai-edge-litert` (LiteRT), "
    "`pip install tflite-runtime`, or on a Coral device `sudo apt-get install python3-pycoral` "
    "(Coral's apt repository). See README.md for versions that work with the Edge TPU."
)


class ClassifyError(Exception):
    """A problem the user can fix; printed as one line."""


def load_bundle(bundle_dir):
    try:
        with open(os.path.join(bundle_dir, "bundle.json"), encoding="utf-8") as fh:
            meta = json.load(fh)
        with open(os.path.join(bundle_dir, meta.get("labels", "labels.txt")), encoding="utf-8") as fh:
            labels = [line.rstrip("\n") for line in fh if line.strip()]
    except (OSError, ValueError) as exc:
        raise ClassifyError("cannot read the bundle in {}: {}".format(bundle_dir, exc))
    return meta, labels


def pick_model(meta, bundle_dir, choice):
    """--model may be a variant name, a file name in the bundle, or a path."""
    models = meta.get("models", [])
    if choice is None:
        choice = meta.get("default_model") or (models[0]["name"] if models else None)
        if choice is None:
            raise ClassifyError("bundle.json lists no model")
    for entry in models:
        if choice in (entry.get("name"), entry.get("file")):
            return os.path.join(bundle_dir, entry["file"]), entry
    if os.path.isfile(choice):
        return choice, {}
    names = [e.get("name") for e in models]
    raise ClassifyError("unknown --model {!r}; this bundle has {}".format(choice, names))


def is_edgetpu_model(path):
    if path.endswith("_edgetpu.tflite"):
        return True
    with open(path, "rb") as fh:
        return b"edgetpu-custom-op" in fh.read()


def runtimes(edgetpu):
    order = ["ai_edge_litert", "tflite_runtime", "tensorflow"]
    return ["pycoral", "tflite_runtime", "ai_edge_litert", "tensorflow"] if edgetpu else order


def import_runtime(name):
    """(Interpreter class, load_delegate function) of one runtime, or None if not installed."""
    try:
        if name == "ai_edge_litert":
            from ai_edge_litert.interpreter import Interpreter, load_delegate
        elif name == "tflite_runtime":
            from tflite_runtime.interpreter import Interpreter, load_delegate
        elif name == "pycoral":
            from pycoral.utils.edgetpu import make_interpreter  # Coral's pycoral, not PyPI's

            return make_interpreter, None
        else:
            import tensorflow as tf

            return tf.lite.Interpreter, tf.lite.experimental.load_delegate
    except Exception:  # ImportError, or a runtime built for another numpy (tflite_runtime 2.14)
        return None
    return Interpreter, load_delegate


def builtin_kernels_option(name):
    """EDGELAB_XNNPACK=0: TFLite's built-in kernels without XNNPACK, as edgelab's own interpreters then
    run, so both give the same output bytes (the default, XNNPACK, rounds int8 results differently now
    and then). {} when the variable is unset or the runtime cannot turn XNNPACK off."""
    if os.environ.get("EDGELAB_XNNPACK") != "0":
        return {}
    module = {"ai_edge_litert": "ai_edge_litert.interpreter", "tflite_runtime": "tflite_runtime.interpreter"}
    try:
        if name == "tensorflow":
            import tensorflow as tf

            resolver = tf.lite.experimental.OpResolverType
        else:
            resolver = __import__(module[name], fromlist=["OpResolverType"]).OpResolverType
    except (ImportError, KeyError, AttributeError):
        return {}
    return {"experimental_op_resolver_type": resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES}


def make_interpreter(path, edgetpu, device, threads, only=None):
    checked_model(path)  # model_check.py: every load in the bundle refuses a file the runtime could crash on
    names = [only] if only else runtimes(edgetpu)
    for name in names:
        found = import_runtime(name)
        if found is None:
            continue
        interpreter_cls, load_delegate = found
        if not edgetpu:
            return interpreter_cls(model_path=path, num_threads=threads, **builtin_kernels_option(name)), name
        library = DELEGATE_LIBRARIES.get(platform.system())
        if library is None:
            raise ClassifyError("the Edge TPU runtime exists for Linux, macOS and Windows only, not {}".format(
                platform.system()))
        try:
            ctypes.CDLL(library)  # a clear message beats the runtime's generic ValueError
        except OSError:
            raise ClassifyError(
                "{} is a compiled Edge TPU model but the Edge TPU runtime ({}) is not installed: "
                "sudo apt-get install libedgetpu1-std (Coral's apt repository; see README.md). "
                "To run on the CPU instead, pick the uncompiled model with --model.".format(
                    os.path.basename(path), library)
            )
        try:
            if name == "pycoral":
                return interpreter_cls(path, device=device), name
            options = {"device": device} if device else {}
            delegate = load_delegate(library, options)
            return interpreter_cls(model_path=path, experimental_delegates=[delegate], num_threads=threads), name
        except (ValueError, RuntimeError) as exc:
            raise ClassifyError(
                "could not open an Edge TPU{} via {}: {}. Is the accelerator plugged in (USB 3 port, "
                "udev rules) or the PCIe driver loaded (/dev/apex_0)? See README.md.".format(
                    " (" + device + ")" if device else "", name, str(exc).splitlines()[0] if str(exc) else exc)
            )
    if only:
        raise ClassifyError("--runtime {} is not installed. {}".format(only, NO_RUNTIME))
    raise ClassifyError(NO_RUNTIME)


def preprocess(image_path, interpreter, meta):
    import numpy as np
    from PIL import Image

    detail = interpreter.get_input_details()[0]
    _, height, width, _ = [int(v) for v in detail["shape"]]
    try:
        with Image.open(image_path) as img:
            img = img.convert("RGB").resize((width, height), getattr(Image, "Resampling", Image).BILINEAR)
            pixels = np.asarray(img, dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise ClassifyError("cannot read image {}: {}".format(image_path, exc))
    norm = meta.get("input", {})
    x = (pixels - float(norm.get("mean", 127.5))) / float(norm.get("std", 127.5))
    dtype = np.dtype(detail["dtype"])
    if dtype.kind in "iu":
        scale, zero_point = detail.get("quantization", (0.0, 0))
        if scale:
            # TFLite's QUANTIZE rule (as edgelab measures it): round half away from zero, then add.
            scaled = np.asarray(x, np.float64) / float(scale)
            x = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + zero_point
        else:  # an integer input without quantization parameters takes raw pixels
            x = pixels
        info = np.iinfo(dtype)
        x = np.clip(x, info.min, info.max)
    return x.astype(dtype)[np.newaxis]


def scores_of(interpreter):
    import numpy as np

    detail = interpreter.get_output_details()[0]
    out = interpreter.get_tensor(detail["index"])[0]
    if np.dtype(detail["dtype"]).kind in "iu":
        scale, zero_point = detail.get("quantization", (0.0, 0))
        if scale:
            # int64 before subtracting: uint8 - zero_point would wrap around
            return scale * (out.astype(np.int64) - zero_point)
        return out.astype(np.float64)
    return out.astype(np.float64)


def checked_model(path, args=None):
    """Check the model file (model_check.py) before any runtime loads it; with --check also run it
    once in a child process. True: --check is done."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import model_check

    try:
        model_check.check_file(path)
        if args is not None and args.check:
            print(model_check.check_in_child(path, args.runtime, args.threads, args.device))
            return True
    except (model_check.ModelCheckError, OSError) as exc:
        raise ClassifyError(str(exc))
    return False


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--bench"]:  # measure the models on this device (device_bench.py; edgelab device bench)
        import device_bench

        return device_bench.main(argv[1:])
    parser = argparse.ArgumentParser(description="Classify images with a model from this bundle.")
    parser.add_argument("images", nargs="*", help="image files (JPEG, PNG, ...)")
    parser.add_argument("--model", help="variant name or file from bundle.json (default: its default_model)")
    parser.add_argument("--top-k", type=int, default=3, help="labels to print per image (default 3)")
    parser.add_argument("--device", help="Edge TPU: usb, usb:0, pci, pci:0 or :0 (default: the first found)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the interpreter")
    parser.add_argument("--runtime", choices=["ai_edge_litert", "tflite_runtime", "pycoral", "tensorflow"],
                        help="use this runtime only")
    parser.add_argument("--bundle", default=HERE, help="bundle folder (default: this script's folder)")
    parser.add_argument("--check", action="store_true",
                        help="load the model and run it once in a child process, then exit (no images needed)")
    parser.add_argument("--drift", action="store_true",
                        help="check the images (30 or more) as one window against the bundle's reference statistics")
    parser.add_argument("--json", action="store_true", help="with --drift: print the verdict as JSON")
    args = parser.parse_args(argv)
    if not args.images and not args.check:
        parser.error("give image files, or --check")
    try:
        try:
            import numpy  # noqa: F401
            import PIL  # noqa: F401
        except ImportError as exc:
            raise ClassifyError("{} is missing: pip install numpy pillow".format(exc.name))
        if args.top_k < 1:
            raise ClassifyError("--top-k must be at least 1, got {}".format(args.top_k))
        missing = [p for p in args.images if not os.path.isfile(p)]
        if missing:
            raise ClassifyError("no such image file: {}".format(", ".join(missing)))
        meta, labels = load_bundle(args.bundle)
        if args.drift:  # drift_check.py, next to this file: one verdict for the window of images
            sys.path.insert(0, HERE)
            import drift_check

            return drift_check.main(args, meta, sys.modules[__name__])
        path, _ = pick_model(meta, args.bundle, args.model)
        if checked_model(path, args):  # model_check.py: refuse a file the runtime could crash on
            return 0
        edgetpu = is_edgetpu_model(path)
        interpreter, runtime = make_interpreter(path, edgetpu, args.device, args.threads, args.runtime)
        interpreter.allocate_tensors()
        print("model: {} (runtime: {}{})".format(os.path.basename(path), runtime, ", Edge TPU" if edgetpu else ""))
        input_index = interpreter.get_input_details()[0]["index"]
        for image_path in args.images:
            interpreter.set_tensor(input_index, preprocess(image_path, interpreter, meta))
            interpreter.invoke()
            scores = scores_of(interpreter)
            if len(scores) != len(labels):
                raise ClassifyError("the model gives {} scores but labels.txt has {} labels".format(
                    len(scores), len(labels)))
            print(image_path)
            for rank, idx in enumerate((-scores).argsort(kind="stable")[: args.top_k], start=1):
                print("  {}. {:<16} {:.4f}".format(rank, labels[idx], float(scores[idx])))
    except ClassifyError as exc:
        print("classify.py: error: {}".format(exc), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
