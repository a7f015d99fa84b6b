"""``edgelab data make-scenes`` and ``edgelab data check``, run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgelab.cli import main


def test_check_json_lists_classes_and_every_skipped_file(bad_corpus, capsys):
    assert main(["data", "check", str(bad_corpus.root), "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    expected = {name: sum(1 for c in bad_corpus.good.values() if c == name) for name in bad_corpus.classes}
    assert report["classes"] == expected
    skipped = {Path(s["path"]).relative_to(bad_corpus.root).as_posix(): s["reason"] for s in report["skipped"]}
    assert skipped == bad_corpus.skipped
    assert report["layout"] == "intel" and report["usable"] is True


def test_check_text_prints_counts_and_reasons(bad_corpus, capsys):
    assert main(["data", "check", str(bad_corpus.root), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "intel layout" in out
    assert any(line.split()[:4] == ["buildings", "18", "3", "21"] for line in out.splitlines())
    for path, reason in bad_corpus.skipped.items():
        assert f"{path}: {reason}" in out


def test_check_missing_folder_exits_2_with_one_line(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "nowhere")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("edgelab: error: Dataset folder not found:") and "nowhere" in lines[0]


def test_check_empty_dataset_exits_2(tmp_path, capsys):
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "empty.jpg").write_bytes(b"")
    assert main(["data", "check", str(tmp_path), "--json", "--no-progress"]) == 2
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["usable"] is False and report["classes"] == {}
    assert {s["reason"] for s in report["skipped"]} == {"zero-byte file", "empty folder"}
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgelab: error: no usable images in")


def test_make_scenes_writes_intel_layout_that_checks_clean(tmp_path, capsys):
    out = tmp_path / "scenes"
    code = main(["data", "make-scenes", str(out), "--per-class", "5", "--size", "24", "--seed", "3", "--no-progress"])
    assert code == 0
    line = capsys.readouterr().out.strip()
    assert line == f"wrote 30 images (6 classes, 24x24, seed 3) to {out} in Intel layout: seg_train 24, seg_test 6"
    assert len(list((out / "seg_train" / "seg_train" / "forest").glob("*.jpg"))) == 4

    assert main(["data", "check", str(out), "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["classes"] == {name: 5 for name in ("buildings", "forest", "glacier", "mountain", "sea", "street")}
    assert report["skipped"] == []


def test_bad_arguments_and_missing_action(capsys):
    with pytest.raises(SystemExit) as info:
        main(["data", "make-scenes", "out", "--per-class", "0"])
    assert info.value.code == 2
    assert "expected an int from 1 to 100000, received '0'" in capsys.readouterr().err
    assert main(["data"]) == 2
    assert "make-scenes" in capsys.readouterr().out
