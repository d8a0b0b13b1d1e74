"""Exact dedup sharded over `--dedup-tasks` hash ranges finds exactly what one finder task finds."""

from __future__ import annotations

import glob

import pyarrow.parquet as pq

from shards.layout import join


def documents(folder: str) -> list[tuple[str, str]]:
    return sorted((r["id"], r["text"]) for f in glob.glob(join(folder, "*.parquet")) for r in pq.read_table(f).to_pylist())


def test_three_finder_tasks_give_the_output_of_one(refinedweb, tmp_path):
    outs = {}
    for tasks in (1, 3):
        out = str(tmp_path / f"dedup{tasks}")
        common = ["--input", "sample", "--output", out, "--tasks", "3", "--disable", "gopher_repetition",
                  "--disable", "gopher_quality", "--disable", "c4_quality", "--disable", "fineweb_quality"]
        refinedweb("download", *common)
        refinedweb("filter", *common, "--dedup-tasks", str(tasks))
        outs[tasks] = out
    removed = {t: documents(join(o, "removed", "exact_dedup")) for t, o in outs.items()}
    kept = {t: documents(join(o, "filtered")) for t, o in outs.items()}
    assert len(removed[1]) > 10, "the case under test: duplicates found"
    assert len(glob.glob(join(outs[3], "dedup", "duplicates", "*"))) == 3, "three finder tasks wrote duplicates"
    assert removed[3] == removed[1] and kept[3] == kept[1]
    texts = [t for _, t in kept[1]]
    assert len(set(texts)) == len(texts)
