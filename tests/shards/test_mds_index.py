"""The merged index lists exactly the given tasks' shards and stock StreamingDataset reads it."""

from __future__ import annotations

import json

import numpy as np
from streaming import MDSWriter, StreamingDataset

from shards import mds


def write_task(folder, task: int, ids: list[str]) -> None:
    with MDSWriter(out=mds.task_folder(str(folder), task), columns=mds.columns("uint16"),
                   compression=mds.COMPRESSION, hashes=mds.HASHES, size_limit=200) as w:
        for i in ids:
            w.write({"input_ids": np.array([101, len(i), 102], np.uint16), "id": i, "num_tokens": 3})


def test_merge_lists_only_given_tasks(tmp_path):
    write_task(tmp_path, 0, [f"a{i}" for i in range(10)])
    write_task(tmp_path, 1, [f"b{i}" for i in range(7)])
    write_task(tmp_path, 2, ["crashed"])  # a writer whose task has no completion marker
    index = mds.merge(str(tmp_path), [1, 0])
    assert mds.summary(index)[0] == 17 and mds.summary(index)[1] > 2  # several shards per task
    assert all(s["zip_data"]["basename"].split("/")[0] in ("00000", "00001") for s in index["shards"])
    assert json.loads((tmp_path / "index.json").read_text()) == index
    ds = StreamingDataset(local=str(tmp_path), shuffle=False, batch_size=1)
    assert [ds[i]["id"] for i in range(len(ds))] == [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(7)]


def test_empty_merge_is_a_valid_empty_index(tmp_path):
    assert mds.merge(str(tmp_path), []) == {"version": 2, "shards": []}
