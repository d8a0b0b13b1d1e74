"""A step run alone refuses an earlier stage that did not complete every task, naming the missing
ranks; the manifest refuses kept-document counts that the buckets and validation do not hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


pytestmark = pytest.mark.slow
NO_FILTERS = [a for f in ("url", "token_length", "gopher_repetition", "gopher_quality", "c4_quality",
                          "fineweb_quality") for a in ("--disable", f)]
COMMON = ["--tasks", "2", "--workers", "1"]
STEP = {"download": [*COMMON, "--input", "sample"], "filter": [*COMMON, *NO_FILTERS, "--dedup", "none"],
        "tokenize": [*COMMON, "--val-fraction", "0.05"], "mix": [*COMMON, "--dedup", "none", *NO_FILTERS]}


@pytest.fixture(scope="module")
def out(tmp_path_factory, refinedweb) -> Path:
    """download, filter (no filters, no dedup) and tokenize of the sample, each complete, 2 tasks."""
    out = tmp_path_factory.mktemp("stages") / "out"
    for step in ("download", "filter", "tokenize"):
        refinedweb(step, "--output", str(out), *STEP[step])
    return out


@pytest.mark.parametrize("stage, step", [("download", "filter"), ("filter", "tokenize"), ("tokenize", "mix")])
def test_step_refuses_partial_previous_stage(out, refinedweb, stage, step):
    marker = out / "logs" / stage / "completions" / "00001"
    assert marker.is_file()  # the stage did complete: only the marker of task 1 goes missing
    marker.unlink()
    try:
        proc = refinedweb(step, "--output", str(out), *STEP[step], check=False)
    finally:
        marker.write_text("")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"`{stage}` did not complete tasks [1] of 2" in proc.stderr
    assert f"rerun the `{stage}` step" in proc.stderr


def test_manifest_refuses_kept_documents_missing_from_shards(out, refinedweb):
    refinedweb("mix", "--output", str(out), *STEP["mix"])  # intact: the counts agree
    manifest = json.loads((out / "manifest.json").read_text())
    held = sum(b["documents"] for b in manifest["buckets"].values()) + manifest["validation"]["documents"]
    assert held == manifest["documents"]["kept"] > 0
    stats = out / "logs" / "filter" / "stats" / "00000.json"
    original = stats.read_text()
    steps = json.loads(original)
    assert steps[1]["name"].endswith("content guard")  # the last (only) filter: its forwarded = kept
    steps[1]["stats"]["forwarded"] += 3
    stats.write_text(json.dumps(steps))
    try:
        proc = refinedweb("mix", "--output", str(out), *STEP["mix"], check=False)
    finally:
        stats.write_text(original)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"{held + 3} documents were kept" in proc.stderr and f"hold {held}" in proc.stderr
    assert "rerun `tokenize`" in proc.stderr
