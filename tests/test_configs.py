"""TrainConfig, ConversionConfig, CompileOptions, TimingOptions, TuneConfig and Constraints: checked once
when made, the keyword shorthand, and a ceiling on the public functions with long signatures."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

import edgelab as el
from edgelab.compare.timing import TimingOptions
from edgelab.device import BenchOptions, Device
from edgelab.edgetpu import CompileOptions, compile_edgetpu
from edgelab.errors import ConfigError
from edgelab.precision import Precision
from edgelab.tflite.config import ConversionConfig
from edgelab.training.config import QAT_CONFIG, TrainConfig
from edgelab.tune.config import TuneConfig
from edgelab.tune.prescreen import Constraints


def test_the_configs_are_exported_at_the_top():
    assert el.TrainConfig is TrainConfig
    assert el.ConversionConfig is ConversionConfig
    assert el.CompileOptions is CompileOptions
    assert el.TimingOptions is TimingOptions
    assert el.TuneConfig is TuneConfig and el.Constraints is Constraints
    assert el.DatasetConfig.__module__ == "edgelab.data.datasets" and el.BundleConfig.__module__ == "edgelab.bundle"


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
        (lambda: TimingOptions(runs=0), "runs=0"),
        (lambda: TimingOptions(runs=50, max_runs=10), "max_runs=10"),
        (lambda: TimingOptions(warmup=-1), "warmup=-1"),
        (lambda: TimingOptions(max_runs=0), "max_runs=0"),
        (lambda: TimingOptions(min_time_s=float("inf")), "min_time_s=inf"),
        (lambda: TimingOptions(num_threads=0), "num_threads=0"),
        (lambda: TuneConfig(trials=-1), "trials=-1"),
        (lambda: TuneConfig(seed=-1), "seed=-1"),
        (lambda: TuneConfig(study=""), "study=''"),
        (lambda: TuneConfig(pruner="median"), "pruner='median'"),
        (lambda: Constraints(budget_ms=0), "budget_ms=0"),
        (lambda: Constraints(link="usb4"), "link='usb4'"),
        (lambda: BenchOptions(max_images=0), "max_images=0"),
        (lambda: BenchOptions(timeout_s=0), "timeout_s=0"),
        (lambda: BenchOptions(cleanup="yes"), "cleanup='yes'"),
        (lambda: Device("pi@raspberrypi", remote_dir=""), "remote_dir=''"),
        (lambda: el.ComparisonOptions(class_names=["a", "a"]), "class_names=['a', 'a']"),
        (lambda: el.DatasetConfig(val_fraction=1.5), "val_fraction=1.5"),
        (lambda: el.DatasetConfig(val_fraction=0.5, test_fraction=0.5), "test_fraction=0.5"),
        (lambda: el.DatasetConfig(max_per_class=0), "max_per_class=0"),
        (lambda: el.DatasetConfig(max_pixels=-1), "max_pixels=-1"),
        (lambda: el.BundleConfig(version="1 2"), "version='1 2'"),
        (lambda: el.BundleConfig(overwrite="no"), "overwrite='no'"),
        (lambda: el.diagnose.RangeCheckOptions(factor=0), "factor=0"),
        (lambda: el.SceneConfig(pred_count=-1), "pred_count=-1"),
        (lambda: el.SceneConfig(test_fraction=1), "test_fraction=1"),
        (lambda: el.diagnose.RangeCheckOptions(margin=1), "margin=1"),
        (lambda: el.diagnose.RangeCheckOptions(max_images=0), "max_images=0"),
        (lambda: el.ComparisonOptions(input_range=(1,)), "input_range=(1,)"),
        (lambda: el.ComparisonOptions(repair=[3]), "repair=[3]"),
        (lambda: el.ComparisonOptions(device="pi@raspberrypi"), "device='pi@raspberrypi'"),
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
    assert el.DatasetConfig(classes=iter(["sea", "forest"]), val_fraction=0).classes == ("sea", "forest")
    assert el.BundleConfig(image_size=64, metrics={"accuracy": 0.9}).image_size == (64, 64)


def test_frozen_with_a_readable_repr():
    config = TrainConfig(epochs=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 6  # type: ignore[misc]
    assert "TrainConfig(epochs=5, batch_size=32," in repr(config)
    assert "timeout_s=180.0" in repr(CompileOptions())
    assert (
        repr(TimingOptions(runs=50)) == "TimingOptions(warmup=5, runs=50, max_runs=None, min_time_s=1.0, num_threads=1)"
    )
    assert "TuneConfig(trials=3, epochs=6," in repr(TuneConfig(trials=3))
    images = np.zeros((4, 8, 8, 3), np.uint8)
    comparing = el.ComparisonOptions(test_data=(images, np.zeros(4)), repair="equalize", input_range=(0, 255))
    assert comparing.repair == ("equalize",) and comparing.input_range.high == 255.0
    assert repr(comparing) == (
        "ComparisonOptions(test_data=(images (4, 8, 8, 3), labels (4,)), "
        "input_range=InputRange(low=0.0, high=255.0), repair=('equalize',))"
    )


def test_the_run_cap_never_cuts_the_runs_asked_for():
    assert TimingOptions().run_cap == 10_000 and TimingOptions(runs=50_000).run_cap == 50_000
    assert TimingOptions(runs=5, max_runs=40).run_cap == 40


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
    with pytest.raises(ConfigError, match="Did you mean 'max_per_class'"):
        el.load_dataset(tmp_path / "missing", max_per_clas=5)
    with pytest.raises(ConfigError, match="Did you mean 'overwrite'"):
        el.export_bundle([tmp_path / "missing.tflite"], ["a"], out_dir=tmp_path / "bundle", overwite=True)
    with pytest.raises(ConfigError, match="Did you mean 'repair'"):
        el.run_comparison(object(), None, out_dir=tmp_path, repairs=["equalize"])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="Did you mean 'min_time_s'"):
        el.measure_latency(tmp_path / "missing.tflite", min_time=0.2)
    with pytest.raises(ConfigError, match="Did you mean 'budget_ms'"):
        el.tune(object(), budget=1.0)
    with pytest.raises(ConfigError, match="Did you mean 'num_threads'"):
        el.device.bench(tmp_path / "missing-bundle", "pi@raspberrypi", thread=2)
    with pytest.raises(ConfigError, match="Expected options of Device.*Did you mean 'ssh_config'"):
        el.device.deploy(tmp_path / "missing-bundle", "pi@raspberrypi", ssh_confg="x")
    with pytest.raises(ConfigError, match="Did you mean 'remote_dir'"):
        el.device.device_doctor("pi@raspberrypi", remotedir="x")
    assert list(tmp_path.iterdir()) == []


def test_a_device_carries_its_connection_and_keywords_replace_it():
    from edgelab.device.ssh import as_target

    device = Device("pi@raspberrypi", python="/opt/py/bin/python3", remote_dir="/data/edgelab")
    assert as_target(device, {}) is device
    moved = as_target(device, {"remote_dir": "/mnt/edgelab"})
    assert (type(moved), moved.python, moved.remote_dir) == (Device, "/opt/py/bin/python3", "/mnt/edgelab")
    assert as_target("pi@raspberrypi", {"python": "python3.9"}, Device) == Device("pi@raspberrypi", python="python3.9")
    assert repr(Device("pi@raspberrypi")).startswith("Device(host='pi@raspberrypi', ssh_config=None, python='python3',")


def test_options_of_two_configs_go_to_the_one_that_has_them():
    from edgelab._config import split_options

    tuning, limits = split_options({"trials": 3, "budget_ms": 1.5, "link": "pcie"}, TuneConfig, Constraints)
    assert TuneConfig.resolve(None, tuning).trials == 3
    assert Constraints.resolve(Constraints(max_cpu_ops=2), limits) == Constraints(1.5, "pcie", max_cpu_ops=2)
    with pytest.raises(ConfigError, match=r"TuneConfig or Constraints.*Received: budget=1.*Did you mean 'budget_ms'"):
        split_options({"budget": 1}, TuneConfig, Constraints)


# --------------------------------------------------------------------------- long signatures

#: The rule: a public function or method takes at most this many parameters (self and cls not
#: counted, *args and **kwargs one each); beyond it, related settings go into a typed option set
#: (a frozen dataclass like those above, passed as ``config=`` or as keyword arguments).
MAX_PARAMETERS = 8

#: The public functions still above MAX_PARAMETERS, at most. A ceiling that only goes down: lower it
#: when one of them is split, never raise it (10 before the option sets for timing and tuning, 8
#: before Device/BenchOptions, ComparisonOptions, DatasetConfig, BundleConfig, RangeCheckOptions,
#: InterpreterSettings and SceneConfig; none since).
CEILING = 0

#: The longest signature allowed (it was 18, tune's, then 14: run_comparison's and device.bench's).
LONGEST = MAX_PARAMETERS

PACKAGE = Path(el.__file__).resolve().parent


def long_signatures(package: Path = PACKAGE, limit: int = MAX_PARAMETERS) -> dict[str, int]:
    """``{"module.py:Class.function": parameters}`` of the public functions above ``limit`` in the
    public modules of ``package`` (no part of the path starts with ``_``; the device-side bundle
    template is not edgelab's API)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).parts
        if "bundle_template" in parts or any(p.startswith("_") and p != "__init__.py" for p in parts):
            continue

        def visit(body: list[ast.stmt], prefix: str, module: str = "/".join(parts)) -> None:
            for node in body:
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    visit(node.body, f"{prefix}{node.name}.", module)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                    args = node.args
                    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
                    if prefix and names[:1] in (["self"], ["cls"]):
                        names = names[1:]
                    count = len(names) + (args.vararg is not None) + (args.kwarg is not None)
                    if count > limit:
                        found[f"{module}:{prefix}{node.name}"] = count

        visit(ast.parse(path.read_text(encoding="utf-8")).body, "")
    return found


def test_public_functions_with_long_signatures_do_not_grow_in_number():
    found = long_signatures()
    listing = ", ".join(f"{name} ({count})" for name, count in sorted(found.items(), key=lambda kv: -kv[1]))
    assert len(found) <= CEILING, f"{len(found)} public functions take more than {MAX_PARAMETERS} parameters: {listing}"
    assert max(found.values(), default=0) <= LONGEST, listing
    assert "tune/search.py:tune" not in found and "compare/benchmark.py:measure_latency" not in found


def test_the_signature_count_sees_a_long_function_a_method_and_kwargs(tmp_path):
    """The counter fails by construction on what it must catch, and skips what is not public."""
    (tmp_path / "mod.py").write_text(
        "def wide(a, b, c, d, e, f, g, h, i): ...\n"
        "def fine(a, b, c, d, e, f, *args, **kwargs): ...\n"
        "def _hidden(a, b, c, d, e, f, g, h, i): ...\n"
        "class Thing:\n    def method(self, a, b, c, d, e, f, g, h, *, i): ...\n"
    )
    (tmp_path / "_private.py").write_text("def wide(a, b, c, d, e, f, g, h, i): ...\n")
    assert long_signatures(tmp_path) == {"mod.py:wide": 9, "mod.py:Thing.method": 9}
