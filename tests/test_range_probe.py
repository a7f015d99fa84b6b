"""A model trained on [0, 1] and not declared: the user sees a warning naming [0, 1], in a script and a notebook."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: A user's model that takes pixels / 255 (a nearest-colour classifier, exact by construction: on [0, 1]
#: every image is nearest its own class colour; fed [-1, 1] the three greys 0.25/0.5/0.75 land on
#: -0.5/0/0.5, so two of the six classes are lost; fed [0, 255] everything is "brightest"), with no
#: preprocessing layer and no declared range, evaluated the way a user would.
SCRIPT = """
import numpy as np
import edgelab as el
from edgelab._keras import keras

colours = np.array([(64, 64, 64), (128, 128, 128), (192, 192, 192), (192, 64, 64), (64, 192, 64), (64, 64, 192)]) / 255
inputs = keras.Input((8, 8, 3))
pooled = keras.layers.GlobalAveragePooling2D()(inputs)
model = keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(pooled), name="trained_on_0_1")
# logit_k = 20 (2 c_k . m - |c_k|^2): the largest for the colour c_k nearest the mean pixel m (in [0, 1])
model.layers[-1].set_weights([20 * 2 * colours.T.astype("float32"), -20 * (colours**2).sum(axis=1).astype("float32")])
rng = np.random.default_rng(0)
labels = np.repeat(np.arange(6), 8)
images = np.clip(colours[labels][:, None, None, :] * 255 + rng.integers(-30, 31, (48, 8, 8, 3)), 0, 255).astype(np.uint8)
assumed = el.evaluate_keras(model, images, labels, [str(k) for k in range(6)])
declared = el.evaluate_keras(model, images, labels, [str(k) for k in range(6)], input_range=(0, 1))
print("accuracy", assumed.accuracy, declared.accuracy)
"""

MESSAGE = "If it was trained on [0, 1], declare it: input_range=(0, 1)"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env.pop("PYTHONWARNINGS", None)  # Python's default filters, as a user's script has them
    return env


def test_plain_script_shows_the_better_range_once(tmp_path):
    script = tmp_path / "mine.py"
    script.write_text(SCRIPT)
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=_env(), cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assumed, declared = (float(v) for v in run.stdout.split()[-2:])
    assert declared == 1.0 and assumed < 0.75, run.stdout  # the probe is about a real, large gap
    assert run.stderr.count(MESSAGE) == 1, run.stderr[-3000:]
    assert (
        "InputRangeWarning" in run.stderr and "scores 1.0000 on 48 labelled images fed pixels in [0, 1]" in run.stderr
    )


def test_notebook_shows_the_better_range(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    from edgelab.nbval import execute_notebook

    monkeypatch.setenv("PYTHONPATH", _env()["PYTHONPATH"])
    path = tmp_path / "mine.ipynb"
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(SCRIPT)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(nb, path)
    execute_notebook(path, timeout_s=300)
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    assert stderr.count(MESSAGE) == 1, outputs


def test_no_warning_when_the_range_is_known_or_nothing_is_clearly_better():
    import _tiny
    import numpy as np

    import edgelab as el
    from edgelab.errors import InputRangeWarning
    from edgelab.training.range_probe import probe_input_range

    x, y = _tiny.colour_task(4, size=8, num_classes=3, seed=0)
    model = _tiny.small_cnn(8, 3, name="declared")
    el.preprocess.set_input_range(model, (0, 1))
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        assert probe_input_range(model, x, y) is None  # declared: nothing to probe
    assert not [w for w in shown if issubclass(w.category, InputRangeWarning)]
    # An undeclared model that predicts one class whatever it is fed: every range scores the same.
    from edgelab._keras import keras

    inputs = keras.Input((8, 8, 3))
    zero = keras.layers.Dense(3, activation="softmax", kernel_initializer="zeros")
    flat = keras.Model(inputs, zero(keras.layers.GlobalAveragePooling2D()(inputs)), name="flat")
    assert probe_input_range(flat, x, y, warn=False) is None
    assert np.isfinite(len(y))


def _trained_on_0_1():
    """The script's model and data, in this process."""
    import numpy as np

    scope: dict = {}
    exec(SCRIPT.split("assumed = ")[0], scope)  # the model and its images, not the evaluation
    return scope["model"], scope["images"], scope["labels"].astype(np.int64)


def test_train_warns_once_and_run_comparison_does_not_repeat_it(tmp_path):
    import numpy as np

    import edgelab as el
    from edgelab._keras import keras
    from edgelab.errors import InputRangeWarning

    model, images, labels = _trained_on_0_1()
    # The user fitted it on pixels / 255 (a zero learning rate keeps the exact weights above).
    model.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    model.fit(images / np.float32(255), labels, epochs=1, verbose=0)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        el.train(model, (images, labels), epochs=1, patience=0, progress=False, sanity=False)
        el.run_comparison(
            model,
            (images, labels),
            test_data=(images, labels),
            class_names=[str(k) for k in range(6)],
            out_dir=tmp_path,
            precisions=["fp32"],
            min_time_s=0.01,
            progress=False,
        )
    found = [str(w.message) for w in shown if issubclass(w.category, InputRangeWarning) and MESSAGE in str(w.message)]
    assert len(found) == 1, [str(w.message) for w in shown]
    assert "scores 1.0000 on 48 labelled images fed pixels in [0, 1]" in found[0]  # probed before training
    assert shown[[str(w.message) for w in shown].index(found[0])].filename == __file__  # points at the user's call


def test_imbalanced_labels_alone_are_not_a_better_range():
    """An untrained-looking model answering class 0 on pixels >= 0 and class 1 on negative ones: with 40 of
    50 labels class 0, [0, 1] "scores" 0.8 against 0.2 in [-1, 1], only by the labels' imbalance."""
    import numpy as np

    from edgelab._keras import keras
    from edgelab.errors import InputRangeWarning
    from edgelab.training.range_probe import probe_input_range

    inputs = keras.Input((8, 8, 3))
    sign = keras.layers.Dense(3, activation="softmax")
    model = keras.Model(inputs, sign(keras.layers.GlobalAveragePooling2D()(inputs)), name="sign")
    sign.set_weights([np.array([[10, -10, 0]] * 3, np.float32), np.zeros(3, np.float32)])
    images = np.full((50, 8, 8, 3), 60, np.uint8)  # -0.53 in [-1, 1], 0.24 in [0, 1]
    labels = np.array([0] * 40 + [1] * 10)
    assert model.predict(images / np.float32(255), verbose=0).argmax(axis=1).tolist() == [0] * 50
    assert model.predict(images / np.float32(127.5) - 1, verbose=0).argmax(axis=1).tolist() == [1] * 50
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        assert probe_input_range(model, images, labels) is None
    assert not [w for w in shown if issubclass(w.category, InputRangeWarning) and "scores" in str(w.message)]


def test_train_does_not_probe_a_model_never_fitted():
    """Random weights may score better in one range by chance; train only probes a model fitted before."""
    import _tiny

    import edgelab as el
    from edgelab.errors import InputRangeWarning
    from edgelab.training.range_probe import probe_input_range

    def fresh():
        el.seed_everything(5)
        return _tiny.small_cnn(8, 3, name="fresh")

    x, y = _tiny.colour_task(12, size=8, num_classes=3, seed=3)
    # These random weights do "prefer" another range than [-1, 1] on these images...
    assert probe_input_range(fresh(), x, y, warn=False) is not None
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        el.train(fresh(), (x, y), epochs=1, patience=0, progress=False, sanity=False)
    # ...but train does not tell the user to declare it.
    assert not [w for w in shown if issubclass(w.category, InputRangeWarning) and "scores" in str(w.message)]
