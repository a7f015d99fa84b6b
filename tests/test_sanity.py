"""Sanity checks on the float model (with reasons) and the progress-bar switches."""

from __future__ import annotations

import warnings

import numpy as np

from edgelab.training.sanity import chance_level, check_predictions


def test_chance_level_and_one_dominant_class_are_flagged():
    labels = np.repeat(np.arange(4), 25)
    assert chance_level(labels, 4) == 0.25
    stuck = check_predictions(labels, np.zeros(100, int), 4)
    assert any("within 5 points of chance" in p for p in stuck)
    assert any("predicts class 0 for 100% of the images" in p for p in stuck)
    assert check_predictions(labels, labels, 4) == []
    almost = labels.copy()
    almost[:20] = (almost[:20] + 1) % 4  # 0.80 accuracy: nothing to say
    assert check_predictions(labels, almost, 4) == []


def test_train_warns_when_validation_loss_stays_at_chance(monkeypatch):
    """Validation loss at chance while training accuracy rises: the finding is shown as a SanityWarning.

    The history is built, not trained: whether 3 epochs on scrambled labels happen to raise training
    accuracy by 0.15 depends on the initial weights (and so on which tests ran before); the rule
    itself does not. That ``train`` runs the check on its own history is checked separately.
    """
    import _tiny
    import pandas as pd

    import edgelab as el
    from edgelab.errors import SanityWarning
    from edgelab.training import sanity

    x, y = _tiny.colour_task(30, size=8, num_classes=3, seed=0)
    xv, yv = _tiny.colour_task(10, size=8, num_classes=3, seed=1)
    model = _tiny.small_cnn(8, 3, name="scrambled")
    el.preprocess.set_input_range(model, (-1, 1))
    history = pd.DataFrame(
        {"epoch": [1, 2, 3], "accuracy": [0.30, 0.50, 0.70], "val_loss": [1.10, 1.10, 1.09], "val_accuracy": [0.3] * 3}
    )  # ln 3 = 1.0986: every validation loss is above 0.9 x chance; training accuracy rose by 0.40
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        findings = sanity.check_training(model, history, x, y, (xv, yv), batch_size=16)
    assert findings and "stayed at chance" in findings[0].message
    assert [w.category for w in shown if issubclass(w.category, SanityWarning)] == [SanityWarning]
    assert "stayed at chance" in _text(shown)

    calls = []
    # Patched where train looks it up: fit binds the name at import, whichever test imported it first.
    from edgelab.training import fit

    monkeypatch.setattr(fit, "check_training", lambda *args, **kwargs: calls.append(args[1]) or [])
    el.train(model, (x, y), (xv, yv), epochs=2, batch_size=16, patience=0)
    assert len(calls) == 1 and list(calls[0]["epoch"]) == [1, 2]  # train checks its own history


def test_comparison_flags_a_chance_level_float_model(tmp_path):
    import _tiny

    import edgelab as el

    x, y = _tiny.colour_task(10, size=8, num_classes=3, seed=0)
    model = _tiny.small_cnn(8, 3, name="untrained")
    el.preprocess.set_input_range(model, (-1, 1))
    for layer in model.layers:  # an untrained model that predicts one class for everything
        if layer.name == "classifier":
            kernel, _ = layer.get_weights()
            layer.set_weights([np.zeros_like(kernel), np.array([5.0, 0.0, 0.0], np.float32)])
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        result = el.run_comparison(
            model,
            (x, y),
            test_data=(x, y),
            calibration=(x, y),
            class_names=("a", "b", "c"),
            out_dir=tmp_path,
            precisions=["fp32"],
            min_time_s=0.01,
        )
    assert result.sanity and "predicts class 0 for 100%" in result.sanity[0]
    assert "predicts class 0 for 100%" in _text(shown)  # shown where it is found, not only stored
    assert result.table.attrs["sanity"] == list(result.sanity)
    assert "sanity_warnings=1" in repr(result)
    out = el.write_report(result, out_dir=tmp_path / "report")
    markdown = (out if out.suffix == ".md" else out / "report.md").read_text()
    assert "**Warning:**" in markdown and "predicts class 0" in markdown


def test_a_mostly_frozen_model_is_named_as_a_likely_cause():
    """A head trained on a frozen backbone: the finding says most weights were frozen; a trainable model has no such cause."""
    import _tiny

    from edgelab._keras import keras
    from edgelab.preprocess import set_input_range
    from edgelab.training.sanity import check_float_model

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(16, 3, name="backbone_conv")(inputs)
    x = keras.layers.BatchNormalization(name="backbone_bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = set_input_range(keras.Model(inputs, keras.layers.Dense(3, name="head")(x)), (0, 255))
    images, labels = _tiny.colour_task(4, size=8, num_classes=3, seed=0)
    one_class = np.eye(3, dtype=np.float32)[np.zeros(len(labels), int)]  # every image called class 0: a finding

    def causes() -> list[str]:
        (finding,) = check_float_model(model, images, labels, one_class, warn=False)
        return [c for c in finding.causes if c.startswith("frozen layers")]

    assert causes() == []  # BatchNormalization's moving statistics alone are not "frozen layers"
    for layer in model.layers:
        layer.trainable = layer.name == "head"
    (cause,) = causes()
    assert "frozen layers: 512 of 563 weights have trainable=False" in cause


def _jupyter_kernel(monkeypatch, front_end: bool) -> None:
    """This process looks like a Jupyter kernel, with a front end a person looks at or headless."""
    import os
    import sys
    import types

    class ZMQInteractiveShell:
        pass

    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: ZMQInteractiveShell()))
    for key in [k for k in list(os.environ) if k == "JPY_SESSION_NAME" or k.startswith(("VSCODE_", "COLAB_"))]:
        monkeypatch.delenv(key)
    if front_end:
        monkeypatch.setenv("JPY_SESSION_NAME", "/home/me/notebook.ipynb")  # JupyterLab names the session


def test_progress_switches(monkeypatch):
    from edgelab._log import progress_enabled, progress_scope

    monkeypatch.delenv("EDGELAB_PROGRESS", raising=False)
    _jupyter_kernel(monkeypatch, front_end=False)
    assert progress_enabled(None) is False  # nobody watches (nbclient / nbval / papermill): no bars by default
    _jupyter_kernel(monkeypatch, front_end=True)
    assert progress_enabled(None) is True  # JupyterLab
    monkeypatch.setenv("EDGELAB_PROGRESS", "0")
    assert progress_enabled(None) is False
    monkeypatch.setenv("EDGELAB_PROGRESS", "1")
    _jupyter_kernel(monkeypatch, front_end=False)
    assert progress_enabled(None) is True
    with progress_scope(False):  # train(progress=False) reaches the dataset's loading bars
        assert progress_enabled(None) is False
        assert progress_enabled(True) is True
    assert progress_enabled(None) is True


def test_train_progress_false_silences_the_loading_bars(capsys, monkeypatch, tmp_path):
    import edgelab as el

    monkeypatch.setenv("EDGELAB_PROGRESS", "1")
    data = el.synthetic_dataset(per_class=3, image_size=16, progress=False)
    model = el.build_model("edgecnn", num_classes=len(data.class_names), image_size=16)
    el.train(model, data, epochs=1, progress=False, sanity=False)
    captured = capsys.readouterr()
    assert "loading" not in captured.err and "train:" not in captured.err


def _text(shown: list) -> str:
    """What the user saw: every EdgelabWarning's text."""
    from edgelab.errors import EdgelabWarning

    return "\n".join(str(w.message) for w in shown if issubclass(w.category, EdgelabWarning))


def test_batchnorm_advice_lowers_the_momentum_only_when_it_is_above_0_9():
    """A BN finding on layers already at momentum 0.9 must not advise "use momentum=0.9".

    The model is built by hand so that batch statistics classify the colour images and the moving ones
    do not: BatchNormalization on the pixels, global pooling, an identity Dense. Normalized over a
    batch, an image's dominant colour is its largest channel (every class is a third of the batch);
    with moving statistics of variance 1 and a mean of -1000 on blue, blue always wins (1/3)
    (the model takes raw pixels, 0..255)."""
    import _tiny

    from edgelab._keras import keras
    from edgelab.preprocess import set_input_range
    from edgelab.training.sanity import check_float_model

    images, labels = _tiny.colour_task(8, size=8, num_classes=3, seed=0)
    for momentum, advised in ((0.9, False), (0.99, True)):
        inputs = keras.Input((8, 8, 3))
        bn = keras.layers.BatchNormalization(momentum=momentum)
        x = keras.layers.GlobalAveragePooling2D()(bn(inputs))
        head = keras.layers.Dense(3, activation="softmax")
        model = set_input_range(keras.Model(inputs, head(x)), (0, 255))
        bn.set_weights([np.ones(3), np.zeros(3), np.array([0.0, 0.0, -1000.0]), np.ones(3)])
        head.set_weights([np.eye(3), np.zeros(3)])
        probabilities = np.asarray(model(images.astype(np.float32), training=False))
        assert (probabilities.argmax(axis=1) == 2).all()  # the moving statistics: blue, always
        (finding,) = check_float_model(model, images, labels, probabilities, warn=False)
        (text,) = [c for c in finding.causes if c.startswith("BatchNormalization")]
        assert f"momentum [{momentum}]" in text and "with batch statistics the model scores 1.000" in text, text
        assert ("use momentum=0.9" in text) is advised, text
        assert "train for more steps" in text
