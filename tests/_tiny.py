"""Tiny models, data and one shared demo run (train -> QAT -> convert -> compare -> report).

The expensive artefacts (a trained edgecnn, its quantization-aware twin, every precision converted
once, one comparison, one report) come from a single ``run_demo`` per test session, cached here:
a session-scoped fixture imported into several test modules would be built once per module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("EDGELAB_PROGRESS", "0")

import numpy as np
import pytest

#: Input size and images per class of the shared pipeline (synthetic scenes, six classes).
SIZE = 32
PER_CLASS = 12

#: One colour per class: an easy, separable task for training tests.
COLOURS = ((220, 40, 40), (40, 200, 40), (40, 40, 220), (220, 220, 40))

_CACHE: dict[str, object] = {}

#: Two float32 runs of one small model (Keras and its fp32 TFLite file, another batch size, another
#: CPU's vector width) give each probability within this: a sum of n terms moves by at most
#: n * 2**-24 of the terms' absolute sum; the longest sum here is edgecnn's last 3x3x64 conv
#: (576 terms) of activations of a few units: 576 * 6e-8 * 3 = 1e-4, and softmax halves a logit's change.
FLOAT32_PROB = 1e-4


def near_ties(probs: np.ndarray, margin: float = 2 * FLOAT32_PROB) -> int:
    """Images whose two best probabilities are within ``margin``: two float32 runs of the model may
    pick either class there (each probability moves by :data:`FLOAT32_PROB` at most)."""
    top = np.sort(np.asarray(probs, np.float64), axis=1)[:, -2:]
    return int(np.sum(top[:, 1] - top[:, 0] <= margin))


def correct(probs: np.ndarray, labels: np.ndarray) -> int:
    """Images whose top class is the label."""
    return int(np.sum(np.asarray(probs).argmax(axis=1) == np.asarray(labels)))


def cached(key: str, build: Callable[[], object]) -> object:
    """``build()`` once per test session."""
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]


def colour_task(per_class: int, size: int = 8, num_classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images whose class is their dominant colour (plus noise), shuffled; labels int64."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), per_class)
    base = np.asarray(COLOURS[:num_classes], np.int16)[labels][:, None, None, :]
    noise = rng.integers(-40, 41, (len(labels), size, size, 3))
    images = np.clip(base + noise, 0, 255).astype(np.uint8)
    order = rng.permutation(len(labels))
    return images[order], labels[order].astype(np.int64)


def small_cnn(size: int = 8, num_classes: int = 3, name: str = "small"):
    """Conv(8, stride 2) -> ReLU -> global pool -> Dense softmax: fast to trace and fit."""
    from edgelab._keras import keras

    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv")(inputs)
    x = keras.layers.ReLU(6.0, name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=name)


def demo_config(out_dir: Path):
    """The demo's settings for the shared pipeline: what ``edgelab demo`` gets from ``DEMO_ARGS``."""
    from edgelab.demo import DemoConfig

    return DemoConfig(
        out_dir=str(out_dir), per_class=PER_CLASS, image_size=SIZE, epochs=1, qat_epochs=1, min_time_s=0.02
    )


#: The command-line arguments giving the same demo parameters (latency timing aside).
DEMO_ARGS = (
    "--per-class",
    str(PER_CLASS),
    "--image-size",
    str(SIZE),
    "--epochs",
    "1",
    "--qat-epochs",
    "1",
    "--no-progress",
)


def _build_pipeline(root: Path) -> SimpleNamespace:
    from edgelab.demo import Workspace, run_demo
    from edgelab.tflite import conversion

    config = demo_config(root / "demo")
    exported: list[str] = []  # the Keras model behind every export made while converting
    original_init = conversion.ExportedModel.__init__

    def counting_init(self, keras_model, *args, **kwargs):
        exported.append(keras_model.name)
        original_init(self, keras_model, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conversion.ExportedModel, "__init__", counting_init)
        result = run_demo(config, progress=False)
    # The trained models, as a later run gets them back from the demo folder.
    ws = Workspace(config, progress=False)
    data, model, qat_model = ws.data(), ws.float_model(), ws.qat_model()
    history, qat_history = ws.history, ws.qat_history
    return SimpleNamespace(
        config=config,
        demo=result,
        out=Path(config.out_dir),
        data=data,
        model=model,
        history=history,
        qat_model=qat_model,
        qat_history=qat_history,
        comparison=result.comparison,
        converted={p: v.model for p, v in result.comparison.variants.items()},
        out_dir=Path(config.out_dir) / "models",
        exported=exported,
    )


def pipeline(tmp_path_factory) -> SimpleNamespace:
    """One ``run_demo`` on 32x32 synthetic scenes (edgecnn, 1 float epoch, 1 QAT epoch, six precisions).

    Attributes: config, demo (the DemoResult), out (the demo folder), data, model and qat_model
    (loaded back from the folder), history, qat_history, comparison, converted (precision ->
    ConvertedModel), out_dir (the .tflite folder), exported (names of the models exported).
    """
    return cached("pipeline", lambda: _build_pipeline(tmp_path_factory.mktemp("pipeline")))


def comparison(tmp_path_factory):
    """The pipeline's comparison of every precision."""
    return pipeline(tmp_path_factory).comparison


def conv_bn_architecture(size: int = 16, name: str = "tiny", input_name: str = "image"):
    """Two Conv-BN-ReLU6 blocks (``conv1_*``, ``conv2_*``), pool, softmax over 3 classes; untrained."""
    from edgelab._keras import keras

    inputs = keras.Input((size, size, 3), name=input_name)
    x = inputs
    for i, filters in enumerate((8, 16)):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name=f"conv{i + 1}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"conv{i + 1}_bn")(x)
        x = keras.layers.ReLU(6.0, name=f"conv{i + 1}_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="classifier")(x), name=name)


def conv_bn_model(size: int = 16):
    """Two Conv-BN-ReLU6 blocks (``conv1_*``, ``conv2_*``), pool, softmax over 3 colours, fitted for 8 epochs
    on ``colour_task(40)`` with input range [-1, 1] declared; built once per session (treat as read-only)."""

    def build():
        from edgelab._keras import keras
        from edgelab.preprocess import normalize, set_input_range

        keras.utils.set_random_seed(0)
        model = conv_bn_architecture(size)
        images, labels = colour_task(40, size=size)
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(normalize(images), labels, epochs=8, verbose=0, batch_size=16)
        set_input_range(model, (-1, 1))
        return model

    return cached(f"conv-bn-{size}", build)
