"""TrainConfig, ConversionConfig and CompileOptions: checked once when made, and the keyword shorthand."""

from __future__ import annotations

import dataclasses

import pytest

import edgelab as el
from edgelab.edgetpu import CompileOptions, compile_edgetpu
from edgelab.errors import ConfigError
from edgelab.precision import Precision
from edgelab.tflite.config import ConversionConfig
from edgelab.training.config import QAT_CONFIG, TrainConfig


def test_the_configs_are_exported_at_the_top():
    assert el.TrainConfig is TrainConfig
    assert el.ConversionConfig is ConversionConfig
    assert el.CompileOptions is CompileOptions


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: TrainConfig(epochs=0), "epochs=0"),
        (lambda: TrainConfig(batch_size=2.5), "batch_size=2.5"),
        (lambda: TrainConfig(learning_rate=0), "learning_rate=0"),
        (lambda: TrainConfig(patience=-1), "patience=-1"),
        (lambda: TrainConfig(augment="yes"), "augment='yes'"),
        (lambda: TrainConfig(input_range=(0,)), "input_range=(0,)"),
        (lambda: ConversionConfig(io_dtype="uint16"), "io_dtype='uint16'"),
        (lambda: ConversionConfig(precisions=["int9"]), "int9"),
        (lambda: ConversionConfig(calibration_samples=0), "calibration_samples=0"),
        (lambda: ConversionConfig(name="a/b"), "name='a/b'"),
        (lambda: ConversionConfig(precisions=["int8"], keep_float=["conv"]), "keep_float=['conv']"),
        (lambda: CompileOptions(timeout_s=0), "timeout_s=0"),
        (lambda: CompileOptions(min_runtime_version=9), "min_runtime_version=9"),
        (lambda: CompileOptions(delegate_search_step=2), "delegate_search_step=2"),
    ],
)
def test_a_bad_value_is_a_config_error_that_echoes_it(make, expected):
    with pytest.raises(ConfigError, match="Expected") as info:
        make()
    assert expected in str(info.value)


def test_values_are_normalised_once():
    config = ConversionConfig(precisions=["INT8", " fp32 ", "Mixed_INT8"], keep_float="conv1")
    assert config.precisions == (Precision.INT8, Precision.FP32, Precision.MIXED_INT8)
    assert config.keep_float == ("conv1",)
    assert TrainConfig(input_range=(0, 255)).input_range.high == 255.0


def test_frozen_with_a_readable_repr():
    config = TrainConfig(epochs=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 6  # type: ignore[misc]
    assert "TrainConfig(epochs=5, batch_size=32," in repr(config)
    assert "timeout_s=180.0" in repr(CompileOptions())


def test_keyword_options_replace_the_configs_fields_and_are_checked():
    base = TrainConfig(epochs=5, batch_size=64)
    merged = TrainConfig.resolve(base, {"seed": 3})
    assert (merged.epochs, merged.batch_size, merged.seed) == (5, 64, 3)
    assert base.seed == 0  # the given config is left as it was
    assert TrainConfig.resolve(None, {}, default=QAT_CONFIG) == QAT_CONFIG
    with pytest.raises(ConfigError, match="epochs=0"):
        TrainConfig.resolve(base, {"epochs": 0})
    with pytest.raises(ConfigError, match="Expected config to be a TrainConfig"):
        TrainConfig.resolve(ConversionConfig(), {})  # type: ignore[arg-type]


def test_a_misspelt_option_is_named_with_a_suggestion_before_any_work(tmp_path):
    # compile_edgetpu checks its options before it looks at the model file, which does not exist here
    with pytest.raises(ConfigError, match="Did you mean 'timeout_s'"):
        compile_edgetpu(tmp_path / "missing.tflite", timeout=5)
    with pytest.raises(ConfigError, match="Did you mean 'epochs'"):
        el.train(object(), None, epoch=3)
    with pytest.raises(ConfigError, match="Did you mean 'io_dtype'"):
        el.convert(object(), "int8", out_dir=tmp_path, io_type="int8")
    assert list(tmp_path.iterdir()) == []
