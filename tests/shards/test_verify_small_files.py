"""`shards verify` covers the index files and mixtures, naming the file at fault; `convert
--validate-hash` checks each shard as it reads; a changed OUT streams through a new cache folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shards import manifest as manifest_io
from shards import mds
from shards.__main__ import main as shards_cli
from shards.streams import CheckedDataset, mixture_streams
from shards.verify import verify


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def unsealed(out: Path) -> None:
    """The manifest without its `files` hashes, as written before they were recorded."""
    m = json.loads((out / "manifest.json").read_text())
    m.pop("files", None)
    (out / "manifest.json").write_text(json.dumps(m))


def test_the_manifest_records_every_index_and_mixture(sample_output):
    files = manifest_io.read(sample_output)["files"]
    assert {"mds/lt1024/index.json", "mds/lt1024/00000/index.json", "mds/lt1024/00001/index.json",
            "mds/val/index.json", "mixtures/stage1.json", "mixtures/stage2.json",
            "mds/materialized/stage2/index.json"} <= set(files)
    assert files["mixtures/stage1.json"] == manifest_io.file_sha256(str(Path(sample_output, "mixtures/stage1.json")))


@pytest.mark.parametrize("rel", ["mds/lt1024/index.json", "mds/lt1024/00001/index.json", "mixtures/stage2.json"])
def test_verify_names_a_changed_index_or_mixture(out_copy, rel):
    flip(out_copy / rel)
    with pytest.raises(ValueError, match=re.escape(str(out_copy / rel)) + ": sha256"):
        verify(str(out_copy))


def _task_index_edited(out: Path) -> Path:
    path = out / "mds/lt1024/00001/index.json"
    index = json.loads(path.read_text())
    index["shards"][0]["samples"] += 1
    path.write_text(json.dumps(index))
    return path


def _proportions_swapped(out: Path) -> Path:
    path = out / "mixtures/stage2.json"
    items = json.loads(path.read_text())
    items[0]["proportion"], items[1]["proportion"] = items[1]["proportion"], items[0]["proportion"]
    path.write_text(json.dumps(items))
    return path


def _extra_mixture(text: str) -> callable:
    def edit(out: Path) -> Path:
        path = out / "mixtures/extra.json"
        path.write_text(text)
        return path
    return edit


@pytest.mark.parametrize("edit, message", [
    (_task_index_edited, "differ from"),
    (_proportions_swapped, "records"),
    (_extra_mixture(json.dumps([{"path": "mds/lt1024", "proportion": 0.5}])), "sum to"),
    (_extra_mixture(json.dumps([{"path": "mds/elsewhere", "proportion": 1.0}])), "is not a bucket"),
    (_extra_mixture(json.dumps([{"path": "../mds/lt1024", "proportion": 1.0}])), "leaves"),
    (_extra_mixture("[{"), "not valid JSON"),
], ids=["task-index", "proportions", "sum", "unknown-bucket", "outside", "json"])
def test_verify_checks_indexes_and_mixtures_without_recorded_hashes(out_copy, edit, message):
    unsealed(out_copy)
    verify(str(out_copy))  # an output written before the hashes were recorded still verifies
    path = edit(out_copy)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + message):
        verify(str(out_copy))


def test_convert_validate_hash_names_a_flipped_shard(out_copy, flipped_shard, tmp_path, capsys):
    args = ["convert", str(out_copy), "--to", "hf", "--output", str(tmp_path / "dest"), "--validate-hash", "xxh64"]
    assert shards_cli(args) == 1
    assert f"{flipped_shard}: xxh64 mismatch" in capsys.readouterr().err


def test_a_changed_output_streams_through_a_new_cache_folder(out_copy):
    """Streaming trusts a cached index.json: a rewritten bucket must not be read from the old cache."""
    out, bucket = str(out_copy), out_copy / "mds" / "lt1024"
    before = {s.remote: s.local for s in mixture_streams(out)}
    assert before == {s.remote: s.local for s in mixture_streams(out)}, "one folder per content, for every rank"
    ds = CheckedDataset(streams=mixture_streams(out), batch_size=1, shuffle=False)
    assert len(ds) == sum(b["documents"] for b in manifest_io.read(out)["buckets"].values())
    del ds
    task0 = mds.summary(mds.read_index(str(bucket / "00000")))[0]
    mds.merge(str(bucket), [0])  # the bucket now holds task 0's shards only
    after = {s.remote: s.local for s in mixture_streams(out)}
    assert after[str(bucket)] != before[str(bucket)]
    assert all(after[k] == v for k, v in before.items() if k != str(bucket))
    ds = CheckedDataset(remote=str(bucket), local=after[str(bucket)], batch_size=1, shuffle=False)
    assert len(ds) == len(list(ds)) == task0 < manifest_io.read(out)["buckets"]["lt1024"]["documents"]
