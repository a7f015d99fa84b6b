"""edgelab.tune: the prescreen, a tiny search, the study's storage, and workers sharing a journal.

Sizes are tiny (32 px scenes, one epoch) so each search takes seconds; the worker tests run
``edgelab tune`` processes on one journal file and wait on files and exit codes, never on time.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _tiny import small_cnn

import edgelab as el
from edgelab.errors import BudgetError, ConfigError, StorageError, StudyMismatchError
from edgelab.tune import Constraints, SearchSpace, prescreen, screen_file

ROOT = Path(__file__).resolve().parents[1]
SIZE = 32
TINY = SearchSpace(architectures=("edgecnn",), widths={"edgecnn": (0.5, 1.0)}, input_sizes=(SIZE,))


@pytest.fixture(scope="module")
def scenes():
    return el.synthetic_dataset(per_class=8, image_size=SIZE, seed=0, progress=False)


def tiny_builder(trial, num_classes, image_size):
    trial.suggest_categorical("kind", ["small"])
    return small_cnn(image_size, num_classes)


def test_prescreen_reads_the_untrained_graph(tmp_path):
    model = el.build_model("edgecnn", num_classes=6, image_size=SIZE, width=0.5)
    loose = prescreen(model, Constraints(budget_ms=1000.0), out_dir=tmp_path / "a")
    assert loose.feasible and loose.reason is None
    assert loose.ops_edgetpu == loose.ops_total > 0
    assert all(v <= 0 for v in loose.violations.values())
    # The same file against a budget below its own estimate: rejected, and the reason says by how much.
    file = tmp_path / "a" / "untrained_int8.tflite"
    tight = screen_file(file, Constraints(budget_ms=loose.latency_ms / 2))
    assert not tight.feasible
    assert "budget" in tight.reason and tight.violations["latency_ms"] > 0
    assert tight.latency_ms == loose.latency_ms
    small = screen_file(file, Constraints(max_size_bytes=1024))
    assert not small.feasible and "file" in small.reason and small.violations["size_bytes"] > 0


def test_prescreen_graph_is_the_one_convert_writes(tmp_path):
    """The prescreen converts in memory, edgelab.convert exports first: the same ops, tensors and screen."""
    from edgelab.edgetpu import analyze_edgetpu
    from edgelab.tflite.inspection import inspect_model

    model = el.build_model("edgecnn", num_classes=6, image_size=SIZE, width=0.5)
    screen = prescreen(model, Constraints(budget_ms=1000.0), out_dir=tmp_path / "a")
    images = np.random.default_rng(0).integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8)
    converted = el.convert(model, "int8", out_dir=tmp_path / "b", calibration=images, calibration_samples=4)
    files = (tmp_path / "a" / "untrained_int8.tflite", converted.path)
    infos = [inspect_model(f) for f in files]
    ops = [
        [(op.op, op.macs, [info.tensors[i].shape for i in op.inputs if i >= 0]) for op in info.ops] for info in infos
    ]
    assert ops[0] == ops[1]
    tensors = [sorted((t.shape, t.dtype, t.per_channel) for t in info.tensors) for info in infos]
    assert tensors[0] == tensors[1]
    io = [[(t.shape, t.dtype, t.scale, t.zero_point) for t in (*info.inputs, *info.outputs)] for info in infos]
    assert io[0] == io[1]
    assert [[str(op.target) for op in analyze_edgetpu(f).ops] for f in files] == [["edgetpu"] * len(ops[0])] * 2
    full = screen_file(converted.path, Constraints(budget_ms=1000.0))
    assert (full.latency_ms, full.ops_edgetpu, full.ops_total, full.off_chip_bytes, full.violations) == (
        screen.latency_ms,
        screen.ops_edgetpu,
        screen.ops_total,
        screen.off_chip_bytes,
        screen.violations,
    )


def test_best_is_the_fastest_within_one_validation_image_of_the_top():
    from dataclasses import replace

    from edgelab.tune import TuneResult
    from edgelab.tune.result import TrialRecord

    def trial(number, correct, ms, val_images=360):
        accuracy = round(correct / 360, 4)  # stored as the search stores it
        return TrialRecord(
            number, "complete", {"input_size": SIZE}, accuracy, ms, 9, 9, 1, 1.0, None, "m", 1, val_images
        )

    def best(*trials):
        return TuneResult("s", "journal", ROOT, Constraints(), trials, ()).best.number

    top, one_behind, two_behind = trial(0, 336, 0.29), trial(1, 335, 0.26), trial(2, 334, 0.20)
    assert best(top, one_behind, two_behind) == 1, "one image behind is a tie at the split's resolution: faster wins"
    assert best(top, two_behind) == 0, "two images behind is a difference: the more accurate wins"
    assert best(top, trial(3, 336, 0.29)) == 0, "full tie: the earlier"
    assert best(trial(4, 335, 0.26), trial(5, 336, 0.26)) == 5, "same latency: the more accurate"
    unknown = [replace(t, val_images=None) for t in (top, one_behind)]
    assert best(*unknown) == 0, "without the validation count: accuracy alone"


def test_impossible_budget_names_the_fastest_candidate_without_training(tmp_path, scenes):
    with pytest.raises(
        BudgetError, match=r"no candidate can meet the budget of 0.001 ms on usb3: the fastest .*edgecnn w0.5"
    ):
        el.tune(scenes, budget_ms=0.001, trials=3, epochs=1, space=TINY, run_dir=tmp_path)
    result = el.tune(scenes, budget_ms=0.001, trials=0, space=TINY, run_dir=tmp_path)
    assert len(result.trials) == 1, "the search stops at the first rejection once the floor is known"
    (trial,) = result.trials
    assert trial.state == "infeasible" and "> budget 0.001 ms" in trial.reason
    assert result.best is None and result.closest() == trial
    folder = tmp_path / "edgelab" / "trial_0000"
    assert (folder / "untrained_int8.tflite").is_file()
    assert not (folder / "train").exists(), "an infeasible candidate is never trained"


def test_tiny_search_trains_converts_and_reports(tmp_path, scenes):
    lines = []
    result = el.tune(
        scenes,
        budget_ms=100.0,
        trials=2,
        epochs=1,
        space=SearchSpace(builder=tiny_builder, input_sizes=(SIZE,)),
        run_dir=tmp_path,
        on_trial=lines.append,
    )
    assert [r.number for r in lines] == [0, 1]
    first, second = result.trials
    assert first.state == "complete" and 0.0 <= first.accuracy <= 1.0
    assert first.params == {"input_size": SIZE, "kind": "small"}
    assert (tmp_path / first.model).is_file() and (tmp_path / first.model).parent.name == "trial_0000"
    assert (tmp_path / "edgelab" / "trial_0000" / "labels.txt").read_text().split() == scenes.class_names
    # A builder's own parameters are only known once it runs: the second trial trains in its own folder.
    assert second.state == "complete" and second.model.startswith("edgelab/trial_0001/")
    assert result.best is not None and result.best_model.is_file()
    assert set(result.pareto_numbers) <= {0, 1} and result.pareto_numbers
    doc = result.to_dict()
    assert set(doc) == {"study", "best", "trials"}
    assert set(doc["best"]) == {"number", "params", "accuracy", "latency_ms", "ops_edgetpu", "ops_total", "model"}
    assert set(doc["trials"][0]) == {"number", "state", "params", "accuracy", "latency_ms", "seconds", "reason"}
    frame = result.to_frame()
    assert list(frame["number"]) == [0, 1] and set(frame["state"]) == {"complete"}
    import matplotlib

    matplotlib.use("Agg")
    ax = result.plot()
    assert "budget 100 ms" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_a_study_refuses_another_space(tmp_path, scenes):
    el.tune(scenes, budget_ms=0.001, trials=0, space=TINY, run_dir=tmp_path, study="s")  # creates the study
    other = SearchSpace(architectures=("edgecnn",), widths={"edgecnn": (0.75,)}, input_sizes=(SIZE,))
    with pytest.raises(StudyMismatchError, match=r"'s' was created with another search space.*widths"):
        el.tune(scenes, budget_ms=0.001, trials=0, space=other, run_dir=tmp_path, study="s")
    with pytest.raises(StudyMismatchError, match="budget_ms 0.001 \\(study\\) vs 5.0 \\(this run\\)"):
        el.tune(scenes, budget_ms=5.0, trials=0, space=TINY, run_dir=tmp_path, study="s")
    assert el.tune(scenes, budget_ms=0.001, trials=0, space=TINY, run_dir=tmp_path, study="s").trials == ()


def test_bad_storage_and_sizes_are_one_clear_error(tmp_path, scenes):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="Expected --storage to be journal:PATH"):
        el.tune(scenes, trials=1, storage="redis://localhost", run_dir=tmp_path)
    with pytest.raises(StorageError, match=r"postgresql://me:\*\*\*@127.0.0.1:9/db"):
        el.tune(scenes, trials=1, storage="postgresql://me:secret@127.0.0.1:9/db", run_dir=tmp_path)
    with pytest.raises(ConfigError, match="resized down, never up"):
        el.tune(scenes, trials=1, space=SearchSpace(input_sizes=(64,)), run_dir=tmp_path)


def test_a_full_disk_stops_the_search_with_one_line(tmp_path, scene_folder, monkeypatch, capsys):
    from edgelab.cli import main
    from edgelab.tune import search

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "x.tflite"))

    monkeypatch.setattr(search, "prescreen", full)
    argv = ["tune", "--data", str(scene_folder), "--image-size", str(SIZE), "--input-sizes", str(SIZE)]
    argv += ["--architectures", "edgecnn", "--out", str(tmp_path / "run"), "--trials", "3"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"edgelab: error: the disk is full ({tmp_path / 'run' / 'x.tflite'}); finished steps are kept"]
    assert main(["tune", "--out", str(tmp_path / "run"), "--trials", "0", "--json"]) == 0
    (trial,) = json.loads(capsys.readouterr().out)["trials"]
    assert trial["state"] == "failed" and "No space left on device" in trial["reason"]


# -- workers: edgelab tune processes on one journal storage ----------------------------------------


@pytest.fixture(scope="module")
def scene_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    el.make_scenes(root, per_class=6, image_size=SIZE, seed=0)
    return root


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT),
        EDGELAB_PROGRESS="0",
        TF_CPP_MIN_LOG_LEVEL="3",
        EDGELAB_CACHE_DIR=str(tmp / "cache"),
        CUDA_VISIBLE_DEVICES="",
    )
    return env


def _worker(tmp: Path, data: Path, trials: int, *extra: str) -> subprocess.Popen:
    argv = [
        sys.executable,
        "-c",
        "import sys; from edgelab.cli import main; sys.exit(main())",
        "tune",
        "--data",
        str(data),
        "--image-size",
        str(SIZE),
        "--input-sizes",
        str(SIZE),
        "--architectures",
        "edgecnn",
        # every candidate breaks the size limit: each trial is a prescreen, seconds, no training
        "--max-size-kb",
        "1",
        "--trials",
        str(trials),
        "--storage",
        f"journal:{tmp / 'shared.journal'}",
        "--study",
        "shared",
        "--out",
        str(tmp / "run"),
        *extra,
    ]
    return subprocess.Popen(argv, env=_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _numbers(stdout: str) -> list[int]:
    return [int(line.split()[1]) for line in stdout.splitlines() if line.startswith("trial ")]


def _lines(proc: subprocess.Popen) -> tuple[list[int], str]:
    out, err = proc.communicate(timeout=900)
    return _numbers(out), err


def test_workers_share_a_journal_and_survive_a_killed_one(tmp_path, scene_folder):
    """Two workers finish 2 x N trials with distinct numbers and their own files while a third is
    killed mid-trial; a rerun then finds that trial failed and goes on (one study, one journal)."""
    victim = _worker(tmp_path, scene_folder, 50)
    a, b = _worker(tmp_path, scene_folder, 2), _worker(tmp_path, scene_folder, 2)
    run = tmp_path / "run" / "shared"
    killed_in = None
    while killed_in is None:  # wait for the victim to hold a trial, then kill it there
        assert victim.poll() is None, victim.stderr.read() if victim.stderr else ""
        for mark in run.glob("trial_*/.running") if run.exists() else ():
            try:
                info = json.loads(mark.read_text() or "{}")
            except (OSError, ValueError):
                continue
            if info.get("pid") == victim.pid:
                killed_in = info["trial"]
        if killed_in is None:
            time.sleep(0.05)  # polling interval only; nothing is asserted on time
    os.kill(victim.pid, signal.SIGKILL)
    done_by_victim, _ = _lines(victim)  # the trials it finished before the kill
    (mine_a, log_a), (mine_b, log_b) = _lines(a), _lines(b)
    assert a.returncode == 0 and b.returncode == 0, log_a + log_b
    assert len(mine_a) == len(mine_b) == 2
    assert len(set(mine_a + mine_b)) == 4, "2 x N trials, distinct numbers"
    assert not set(mine_a + mine_b) & set(done_by_victim)
    rerun = _worker(tmp_path, scene_folder, 1, "--json")
    out, err = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, err
    doc = json.loads(out)
    (mine_r,) = _numbers(err)
    failed = [t["number"] for t in doc["trials"] if t["state"] == "failed"]
    assert len(failed) == 1, "exactly the killed worker's trial failed"
    assert failed[0] >= killed_in and failed[0] not in {*mine_a, *mine_b, *done_by_victim, mine_r}
    (reason,) = [t["reason"] for t in doc["trials"] if t["state"] == "failed"]
    assert "worker stopped mid-trial" in reason
    numbers = sorted([*mine_a, *mine_b, *done_by_victim, *failed, mine_r])
    assert [t["number"] for t in doc["trials"]] == numbers == list(range(len(numbers)))
    assert {t["state"] for t in doc["trials"] if t["number"] != failed[0]} == {"infeasible"} and doc["best"] is None
    for folder in run.iterdir():  # every folder belongs to one trial; duplicates of a finished candidate write none
        assert folder.name in {f"trial_{n:04d}" for n in numbers}
    assert not any(run.glob("trial_*/.running"))
