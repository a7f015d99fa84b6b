"""Untrusted files and real faults: nothing takes the process down, nothing is lost.

A seeded, time-bounded mutation campaign over the models tests/data ships; the crashers found by
earlier campaigns rebuilt from those models; native crashes contained in a child process; torn
files, concurrent runs, Ctrl-C, full disks and CLI misuse.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import _fuzz
import numpy as np
import pytest

from edgelab.errors import ModelFileError
from edgelab.tflite.validate import ModelValidationError, validate_model

ROOT = Path(__file__).resolve().parents[1]
CORAL = ROOT / "tests" / "data" / "coral"
SPLIT = CORAL / "split_concat.tflite"
MOBILENET = CORAL / "mobilenet_v1_0.25_128_quant.tflite"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "EDGELAB_PROGRESS": "0"}


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgelab.cli", *map(str, args)], capture_output=True, text=True, timeout=timeout, env=ENV
    )


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The CLI's stderr is exactly one ``edgelab...: error:`` line, exit code 2, no traceback."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


# ----------------------------------------------------------------------------- the mutation campaign


#: make test's share: a fixed number of mutants (no time budget); large campaigns run by hand with
#: ``python tests/_fuzz.py SEED N`` (see tests/_fuzz.py).
FUZZ_SEED, FUZZ_MUTANTS = 2024, 48


def test_mutants_never_crash_trace_or_hang(tmp_path):
    """Seeded mutants, each through inspect (+ analyze), benchmark and an in-process load + predict
    in a worker process: no signal, no traceback, no hang (a crash is counted, not fatal here)."""
    made = _fuzz.mutants(seed=FUZZ_SEED, n=FUZZ_MUTANTS, out_dir=tmp_path)
    labels = {str(p): label for label, p in made}
    outcome = _fuzz.run([p for _, p in made])
    print("\n" + outcome.summary())
    assert not outcome.signals, [(labels[p], code) for p, code in outcome.signals]
    assert not outcome.tracebacks, [(labels[p], detail) for p, detail in outcome.tracebacks]
    assert not outcome.hangs, [labels[p] for p in outcome.hangs]
    assert outcome.tried == FUZZ_MUTANTS and outcome.runs == FUZZ_MUTANTS * len(_fuzz.COMMANDS)
    assert outcome.clean > 0 and outcome.native_loads > 0  # most are refused; some reach the interpreter


def test_the_mutator_reaches_every_table_and_float_field():
    """Offsets of every table the models hold, and special floats (subnormal, huge, tiny) in float fields."""
    import random

    data = _fuzz.CORAL.joinpath("mobilenet_v1_0.25_128_quant.tflite").read_bytes()
    tables = {name.split(".")[0] for name in _fuzz.offset_sites(data)}
    assert {"Model", "SubGraph", "Tensor", "Operator", "QuantizationParameters", "Buffer", "OperatorCode"} <= tables
    assert {1.08e-42, 3.4e38, 1e-30} <= set(_fuzz.FLOATS)
    rng = random.Random(0)
    labels = {_fuzz.mutate(data, rng, _fuzz.structure_end(data))[0] for _ in range(300)}
    assert any(label.startswith("offset:Tensor.") for label in labels)
    assert any(label.startswith("edit:float_field:QuantizationParametersT.scale") for label in labels)


# ----------------------------------------------------------------------------- known crashers


def _edited(source: Path, edit) -> bytes:
    model = _fuzz._schema().ModelT.InitFromPackedBuf(source.read_bytes(), 0)
    edit(model, model.subgraphs[0])
    return _fuzz._pack(model)


def _byte(source: Path, offset: int, value: int) -> bytes:
    data = bytearray(source.read_bytes())
    data[offset] = value
    return bytes(data)


def _vtable_lost(source: Path, tensor: int) -> bytes:
    """The table of ``tensor`` (subgraph 0) points at itself as its vtable (soffset 0): a vtable of
    size 0, which flatbuffers' verifier accepts, so every field reads as its default."""
    data = bytearray(source.read_bytes())
    pos = _fuzz._schema().Model.GetRootAsModel(data, 0).Subgraphs(0).Tensors(tensor)._tab.Pos
    data[pos : pos + 4] = bytes(4)
    return bytes(data)


def _set_output_scale(model, graph):
    graph.tensors[graph.outputs[0]].quantization.scale = np.array([np.inf], np.float32)


def _set(attr, value, op=1):
    def edit(model, graph):
        setattr(graph.operators[op].builtinOptions if attr == "numSplits" else graph.operators[op], attr, value)

    return edit


CRASHERS = {
    # name: (bytes, words the message must contain). Each killed the process (SIGSEGV/SIGABRT) before.
    "output_scale_inf": (lambda: _edited(MOBILENET, _set_output_scale), "scale inf"),
    "split_byte_240_00": (lambda: _byte(SPLIT, 240, 0x00), "num_splits is 0"),
    "split_byte_240_ff": (lambda: _byte(SPLIT, 240, 0xFF), "num_splits is 255"),
    "split_byte_241_ff": (lambda: _byte(SPLIT, 241, 0xFF), "num_splits is 65286"),
    "split_num_splits_771": (lambda: _edited(SPLIT, _set("numSplits", 771)), "num_splits is 771"),
    "split_num_splits_1000": (lambda: _edited(SPLIT, _set("numSplits", 1000)), "num_splits is 1000"),
    "split_input_minus_1": (lambda: _edited(SPLIT, _set("inputs", np.array([-1, 3], np.int32))), "tensor index -1"),
    "graph_output_minus_1": (
        lambda: _edited(SPLIT, lambda m, g: setattr(g, "outputs", np.array([-1, 6, 8, 5, 10], np.int32))),
        "graph output 0",
    ),
    "split_options_of_conv": (lambda: _edited(SPLIT, _set("builtinOptionsType", 1)), "SPLIT carries SplitOptions"),
    "tensor_name_not_utf8": (
        lambda: _edited(SPLIT, lambda m, g: setattr(g.tensors[3], "name", b"\xff\xfeconcat")),
        "not valid UTF-8",
    ),
    # Not a crash but 56 s of work: ADD broadcasting a [480, 1, 1, 80] weight over the batch.
    "add_output_not_the_broadcast": (
        lambda: _edited(
            CORAL / "deeplabv3_mnv2_dm05_pascal_quant.tflite",
            lambda m, g: setattr(g.operators[57], "inputs", np.array([151, 157], np.int32)),
        ),
        "output shape is the broadcast",
    ),
    # Seed 2026's m1218: ADD's uint8 output became a FLOAT32 tensor without quantization; LiteRT
    # aborted (SIGABRT) in allocate_tensors, with or without XNNPACK.
    "tensor_vtable_lost": (
        lambda: _vtable_lost(CORAL / "deeplabv3_mnv2_dm05_pascal_quant.tflite", 90),
        "ADD on UINT8 writes UINT8",
    ),
    "op_reads_later_output": (lambda: _edited(SPLIT, lambda m, g: g.operators.reverse()), "defined before use"),
}


@pytest.fixture(scope="module")
def crashers(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("crashers")
    paths = {}
    for name, (build, _) in CRASHERS.items():
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(build())
    return paths


@pytest.mark.parametrize("name", sorted(CRASHERS))
def test_crasher_is_refused_naming_file_place_and_rule(crashers, name):
    from edgelab.tflite.runtime import TFLiteModel

    path = crashers[name]
    with pytest.raises(ModelValidationError) as err:
        validate_model(path)
    message = str(err.value)
    assert str(path) in message and "rule:" in message and CRASHERS[name][1] in message, message
    assert err.value.rule and err.value.where and err.value.path == str(path)
    with pytest.raises(ModelFileError, match="not a valid TFLite model"):
        TFLiteModel(path)


def test_cli_gives_one_line_and_inspect_and_analyze_agree(crashers):
    path = crashers["output_scale_inf"]
    inspect = one_error_line(cli("inspect", "--json", path))
    analyze = one_error_line(cli("analyze", "--json", path))
    bench = one_error_line(cli("benchmark", path, "--min-time", "0.01"))
    assert inspect == analyze == bench
    assert "scale inf" in inspect and str(path) in inspect


def test_a_native_crash_in_the_isolated_check_becomes_an_error(crashers):
    """With the rules off, the interpreter really crashes: the child dies, this process reports it."""
    from edgelab.tflite.isolation import check_model

    with pytest.raises(
        ModelFileError, match=r"the interpreter crashed on .*split_num_splits_771\.tflite \(signal 11\)"
    ):
        check_model(crashers["split_num_splits_771"], validate=False)
    ok = check_model(MOBILENET)
    assert ok.isolated and ok.runtime and ok.inputs == ("uint8[1, 128, 128, 3]",)


def test_native_crash_output_is_not_swallowed():
    code = (
        "from edgelab._log import captured_native_output\nimport faulthandler\n"
        "with captured_native_output('x'):\n    faulthandler._sigsegv()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert proc.returncode == -signal.SIGSEGV
    assert "Segmentation fault" in proc.stderr and "captured_native_output" not in proc.stdout


def test_json_output_is_strict(capsys):
    from edgelab._cli import print_json

    payload = {"a": float("inf"), "b": [float("nan"), 1.5], "c": np.float32("-inf"), "d": "x"}
    print_json(payload)  # what every --json flag prints
    assert json.loads(capsys.readouterr().out) == {
        "a": None,
        "b": [None, 1.5],
        "c": None,
        "d": "x",
    }


def test_every_shipped_model_passes_validation():
    for path in sorted(CORAL.glob("*.tflite")):
        validate_model(path)


def test_predict_errors_are_edgelab_errors():
    from edgelab.tflite.runtime import TFLiteModel

    model = TFLiteModel(MOBILENET, batching=False)  # batch one: predict runs model.interpreter

    def broken(*args):
        raise RuntimeError("tensorflow/lite/kernels/x.cc Dimension mismatch")

    model.interpreter.invoke = broken  # what the runtime raises when a kernel refuses its tensors
    with pytest.raises(ModelFileError, match=r"Cannot run .*Dimension mismatch"):
        model.predict(np.zeros((1, 128, 128, 3), np.uint8), progress=False)


# ----------------------------------------------------------------------------- CLI arguments


@pytest.mark.parametrize(
    "argv, wanted",
    [
        (["benchmark", str(MOBILENET), "--threads", "60000"], "from 1 to 256"),
        (["benchmark", str(MOBILENET), "--min-time", "inf"], "in [0, 3600]"),
        (["benchmark", str(MOBILENET), "--min-time", "nan"], "in [0, 3600]"),
        (["demo", "--per-class", "1"], "from 3 to 100000"),
        (["demo", "--per-class", "100000000"], "from 3 to 100000"),
        (["demo", "--max-per-class", "0"], ">= 3"),
        (["demo", "--image-size", "100000"], "from 16 to 1024"),
        (["demo", "--epochs", "0"], "from 1 to 10000"),
        (["data", "make-scenes", "out", "--size", "100000"], "from 8 to 4096"),
        (["data", "make-scenes", "out", "--test-fraction", "nan"], "in (0, 1)"),
        (["compile", "m.tflite", "--timeout", "inf"], "in (0, 86400]"),
    ],
)
def test_out_of_range_arguments_are_one_line(argv, wanted, capsys):
    from edgelab.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and wanted in err[0], err


def test_demo_refuses_max_per_class_without_data_and_oversized_runs(capsys):
    from edgelab.cli import main

    assert main(["demo", "--max-per-class", "5"]) == 2
    assert "without --data" in capsys.readouterr().err
    assert main(["demo", "--per-class", "100000", "--image-size", "1024"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "8 GiB" in err[0]


def test_out_below_a_file_or_under_proc_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "is a file, so no folder can be made there" in one_error_line(
        cli("demo", "--out", blocker / "run", "--per-class", "3")
    )
    assert "error:" in one_error_line(cli("data", "make-scenes", "/proc/edgelab-test", "--per-class", "1"))


def test_a_full_disk_is_one_line(capsys):
    from edgelab._cli.args import run_command

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/run/best.weights.h5")

    assert run_command(full, None) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["edgelab: error: the disk is full (/data/run/best.weights.h5); finished steps are kept"]
    proc = subprocess.run(
        f"{sys.executable} -m edgelab.cli inspect --json {MOBILENET} > /dev/full",
        shell=True,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert one_error_line(proc) == "edgelab: error: the disk is full; finished steps are kept"


# ----------------------------------------------------------------------------- torn files, locks


def test_write_atomic_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    from edgelab import _files

    target = tmp_path / "params.json"
    target.write_text("old")

    def fail(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_files, "publish", fail)
    with pytest.raises(OSError):
        _files.write_atomic(target, "new")
    with pytest.raises(OSError), _files.atomic_path(tmp_path / "w.h5") as tmp:
        tmp.write_bytes(b"partial")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["params.json"]


def test_torn_demo_files_are_redone_with_a_note(tmp_path, recwarn):
    """A torn params.json is written again; a torn float_model.h5 is dropped with a note before the step
    runs again (the step here stops at once, at its data folder, which does not exist)."""
    from edgelab import demo
    from edgelab.errors import EdgelabError, ResumeWarning

    config = demo.DemoConfig(
        out_dir=str(tmp_path / "run"), data=str(tmp_path / "no-data"), image_size=16, epochs=1, qat_epochs=0
    )
    out = demo.prepare_out_dir(config)
    (out / "params.json").write_text('{"per_class": 3, "ima')  # torn by a kill mid-write
    demo.prepare_out_dir(config)
    assert json.loads((out / "params.json").read_text())["image_size"] == 16
    (out / "train").mkdir()
    (out / "train" / "history.csv").write_bytes(b"\x00\xff\x00")
    torn_model = out / "float_model.h5"
    torn_model.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(EdgelabError, match="no-data"):
        demo.Workspace(config, progress=False).float_model()
    assert not torn_model.exists()
    notes = [str(w.message) for w in recwarn if issubclass(w.category, ResumeWarning)]
    assert any("params.json is unreadable" in n for n in notes) and any(
        "float_model.h5 is unreadable" in n for n in notes
    )


def test_a_second_run_into_a_locked_folder_says_who_holds_it(tmp_path):
    from edgelab._files import FolderBusyError, run_lock

    folder = tmp_path / "run"
    code = (
        "import sys\nfrom pathlib import Path\nfrom edgelab._files import run_lock\n"
        f"with run_lock(Path({str(folder)!r}), 'edgelab demo --out run'):\n"
        "    print('locked', flush=True)\n    sys.stdin.read()\n"  # holds the lock until killed
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        busy = rf"in use by another edgelab run \(pid {holder.pid} on .*edgelab demo --out run"
        with pytest.raises(FolderBusyError, match=busy), run_lock(folder):
            pass
        line = one_error_line(cli("demo", "--out", folder, "--per-class", "3"))
        assert f"pid {holder.pid}" in line
    finally:
        holder.kill()  # SIGKILL: the operating system releases the lock
        holder.wait()
    with run_lock(folder):  # free again, no stale file in the way
        pass


# ----------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_stops_native_work_that_never_returns():
    """The work blocks forever in native code (a lock wait in a worker thread), so "stopped" can only
    be printed if Ctrl-C ended the wait; the child says "ready" from inside the work, so the signal
    cannot arrive before the wait began. The timeout only bounds a hang."""
    code = (
        "import threading\nfrom edgelab._interrupt import call_interruptibly\n"
        "def work():\n    print('ready', flush=True)\n    threading.Event().wait()\n"
        "try:\n    call_interruptibly(work)\nexcept KeyboardInterrupt:\n    print('stopped', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert out.strip() == "stopped" and proc.returncode == 0


def test_a_swallowed_ctrl_c_still_surfaces():
    from edgelab._interrupt import interrupts_surface

    with pytest.raises(KeyboardInterrupt), interrupts_surface():
        try:  # what a weakref callback does with it: printed and dropped
            os.kill(os.getpid(), signal.SIGINT)  # to itself: handled before kill() returns (POSIX)
            time.sleep(1)  # never reached in full; only gives the handler a place to raise
        except KeyboardInterrupt:
            pass


def _loaded_interpreter(pid: int) -> bool:
    """Whether process ``pid`` has mapped a TFLite interpreter library (LiteRT, TensorFlow or
    tflite_runtime: all name it ``*interpreter_wrapper*``); the CLI loads it only inside a command."""
    try:
        return "interpreter_wrapper" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def test_ctrl_c_in_the_cli_is_one_line_and_exit_130():
    """Ctrl-C sent as soon as the benchmark command maps its interpreter library (polled, not slept
    for), i.e. while the runtime's C++ module initialises or just after: one line, exit 130. The run
    would last an hour, so exit 130 comes from the signal; the deadlines only bound a hang."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgelab.cli", "benchmark", str(MOBILENET), "--min-time", "3600", "--no-isolate"],
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    deadline = time.monotonic() + 300  # a slow start just polls longer
    while not _loaded_interpreter(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _loaded_interpreter(proc.pid), proc.communicate(timeout=60)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("the Ctrl-C was lost: the benchmark kept running") from None
    assert proc.returncode == 130, err
    assert err.strip() == "edgelab: interrupted; finished steps are kept and reused on the next run", err


#: Two ways a C extension's import turns a Ctrl-C into its own ImportError: pybind11 (LiteRT's and
#: TensorFlow's interpreter modules) chains it as the cause; numpy's C init replaces it outright.
_SWALLOWING_IMPORTS = {
    "pybind11": 'raise ImportError("initialization failed") from KeyboardInterrupt()\n',
    "numpy": (
        "import os, signal, time\n"
        "try:\n    os.kill(os.getpid(), signal.SIGINT)\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    pass\n"
        'raise ImportError("PyCapsule_Import could not import module")\n'
    ),
}


@pytest.mark.parametrize("style", sorted(_SWALLOWING_IMPORTS))
def test_a_ctrl_c_that_an_import_turns_into_importerror_still_ends_the_cli(tmp_path, style):
    """LiteRT's interpreter module (a stand-in first on the path) turns the Ctrl-C that arrives while it
    initialises into ImportError: the command ends with the interrupted line instead of falling back
    to the next runtime and running the benchmark (--min-time 0: that run would end with exit 0)."""
    spec = importlib.util.find_spec("ai_edge_litert")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("LiteRT (ai_edge_litert) is not installed")
    package = tmp_path / "ai_edge_litert"
    package.mkdir()
    # Its other modules (the flatbuffer schema edgelab reads with) come from the real package.
    (package / "__init__.py").write_text(f"__path__.append({next(iter(spec.submodule_search_locations))!r})\n")
    (package / "interpreter.py").write_text(_SWALLOWING_IMPORTS[style])
    env = {**ENV, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    proc = subprocess.run(
        [sys.executable, "-m", "edgelab.cli", "benchmark", str(MOBILENET), "--min-time", "0", "--no-isolate"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 130, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.strip() == "edgelab: interrupted; finished steps are kept and reused on the next run"


def test_a_missing_dataset_folder_is_one_line(tmp_path):
    line = one_error_line(cli("demo", "--data", tmp_path / "nonexistent", "--out", tmp_path / "run"))
    assert line.startswith("edgelab: error: Dataset folder not found:")


def test_atomic_path_keeps_the_suffixes_writers_read_the_format_from(tmp_path):
    from edgelab._files import atomic_path

    with atomic_path(tmp_path / "best.weights.h5") as tmp:
        assert tmp.name.endswith(".weights.h5") and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "best.weights.h5").read_bytes() == b"x" and len(list(tmp_path.iterdir())) == 1
