"""Merging the MDS indexes trusts a tokenize task's completion marker only when its indexes hold the
documents its stats counted; otherwise it fails naming the marker to delete, and deleting it and
rerunning redoes that task."""

from __future__ import annotations

import json
import shutil

import pytest

from pipelines.tokenize_mds import MergeIndexes
from shards import mds
from shards.layout import DEFAULT_EDGES

pytestmark = pytest.mark.slow


@pytest.fixture
def out(sample_output, tmp_path):
    return shutil.copytree(sample_output, tmp_path / "out")


def merge(out) -> None:
    list(MergeIndexes(str(out), DEFAULT_EDGES, str(out / "logs" / "tokenize"), 2).run())


def test_index_missing_or_count_off_names_the_marker(out):
    merge(out)  # intact: the stats and indexes agree
    index = out / "mds" / "lt1024" / "00001" / "index.json"
    held = sum(s["samples"] for s in json.loads(index.read_text())["shards"])
    index.unlink()
    with pytest.raises(ValueError) as missing:
        merge(out)
    assert f"{index} is missing, its stats count {held} documents there" in str(missing.value)
    assert f"Delete {out / 'logs' / 'tokenize' / 'completions' / '00001'}, then rerun" in str(missing.value)
    assert "task 0" not in str(missing.value)

    stats = out / "logs" / "tokenize" / "stats" / "00000.json"
    steps = json.loads(stats.read_text())
    steps[1]["stats"]["val/documents"] += 2
    stats.write_text(json.dumps(steps))
    listed = mds.summary(mds.read_index(str(out / "mds" / "val" / "00000")))[0]
    with pytest.raises(ValueError) as both:
        merge(out)
    assert f"lists {listed} documents, its stats count {listed + 2}" in str(both.value)
    assert "tokenize tasks [0, 1] have a completion marker" in str(both.value)
    assert f"completions/00000 and {out / 'logs' / 'tokenize' / 'completions' / '00001'}" in str(both.value)


def test_deleting_the_named_marker_and_rerunning_redoes_the_task(out, refinedweb):
    merged = mds.read_index(str(out / "mds" / "lt1024"))
    shutil.rmtree(out / "mds" / "lt1024" / "00001")
    args = ["tokenize", "--output", str(out), "--tasks", "2", "--workers", "2", "--val-fraction", "0.05"]
    failed = refinedweb(*args, check=False)
    marker = out / "logs" / "tokenize" / "completions" / "00001"
    assert failed.returncode == 2 and f"Delete {marker}, then rerun the same command" in failed.stderr, failed.stderr[-2000:]
    marker.unlink()
    refinedweb(*args)
    assert mds.read_index(str(out / "mds" / "lt1024")) == merged  # task 1 redone: the same shards
