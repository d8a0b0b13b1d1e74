"""A shared OUT is untrusted input: its index.json, manifest and mixtures can neither run code in our
readers nor point them outside OUT (whoever wrote the files wrote their hashes too)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from streaming import MDSWriter

from pipelines.mix import materialize
from shards import manifest as manifest_io
from shards import mds
from shards.__main__ import main as shards_cli
from shards.convert import convert, split_folders
from shards.layout import join_within
from shards.streams import mixture_streams
from shards.verify import verify_section

SPECIAL = {"cls": 101, "sep": 102}


class CreatesFile:
    """Unpickling it creates `path`: the stand-in for an attacker's payload."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


@pytest.fixture
def pickled_out(tmp_path):
    """An OUT with a valid manifest whose one bucket holds a shard with a `pkl` column and valid hashes."""
    out, marker = tmp_path / "out", tmp_path / "pwned"
    columns = {"input_ids": "ndarray:uint16", "id": "str", "num_tokens": "pkl"}
    with MDSWriter(out=str(out / "mds" / "lt1024"), columns=columns, compression=mds.COMPRESSION,
                   hashes=mds.HASHES) as w:
        w.write({"input_ids": np.array([101, 7, 102], np.uint16), "id": "x", "num_tokens": CreatesFile(str(marker))})
    mds.write_index(str(out / "mds" / "val"), {"version": 2, "shards": []})
    counts = {"documents": 1, "tokens": 3, "shards": 1}
    manifest_io.write(str(out), {
        "format_version": manifest_io.FORMAT_VERSION,
        "tokenizer": {"name": "bert-base-uncased", "sha256": "0", "vocab_size": 30522, "dtype": "uint16",
                      "special_tokens": {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103}},
        "buckets": {"lt1024": {"path": "mds/lt1024", "min_tokens": 0, "max_tokens": 1024, **counts}},
        "validation": {"path": "mds/val", "fraction": 0.0, "documents": 0, "tokens": 0, "shards": 0},
    })
    return out, marker


@pytest.mark.parametrize("entry", ["verify", "convert", "materialize"])
def test_pickle_column_is_refused_before_decoding(pickled_out, entry, tmp_path, capsys):
    out, marker = pickled_out
    index = str(out / "mds" / "lt1024" / "index.json")
    if entry == "verify":
        assert shards_cli(["verify", str(out)]) == 1
        message = capsys.readouterr().err
    else:
        with pytest.raises(ValueError) as e:
            if entry == "convert":
                convert(str(out), "hf", str(tmp_path / "dest"))
            else:
                materialize(str(out), "stage1", [{"path": "mds/lt1024", "proportion": 1.0}],
                            manifest_io.read(str(out))["buckets"], 100, 0, "uint16")
        message = str(e.value)
    assert not marker.exists(), f"{entry} unpickled the shard"
    assert index in message and "'pkl'" in message, message


@pytest.mark.parametrize("rel", ["../elsewhere", "mds/../../elsewhere", "/abs/mds", "s3://other/mds", "..\\up"])
def test_paths_read_from_files_stay_under_the_root(rel, tmp_path):
    with pytest.raises(ValueError, match=r"manifest\.json: path .* leaves"):
        join_within(str(tmp_path), rel, "manifest.json")
    assert join_within("s3://b/out", "mds/lt1024", "x") == "s3://b/out/mds/lt1024"
    assert join_within(str(tmp_path), "mds/val", "x") == str(tmp_path / "mds" / "val")


def test_mixture_path_outside_root_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    mixture = tmp_path / "out" / "mixtures" / "evil.json"
    mixture.parent.mkdir(parents=True)
    mixture.write_text(json.dumps([{"path": "../elsewhere", "proportion": 1.0}]))
    with pytest.raises(ValueError, match=r"evil\.json: path '\.\./elsewhere' leaves"):
        mixture_streams(str(tmp_path / "out"), str(mixture))


def test_index_basename_outside_folder_is_refused(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"not yours")
    folder = tmp_path / "out" / "mds" / "lt1024"
    folder.mkdir(parents=True)
    shard = {"raw_data": {"basename": "../../../secret", "bytes": 9, "hashes": {}}}
    with pytest.raises(ValueError, match=r"index\.json: path '\.\./\.\./\.\./secret' leaves"):
        mds.read_shard(str(folder), shard)


def test_manifest_bucket_path_outside_root_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "index.json").write_text(json.dumps({"version": 2, "shards": []}))
    section = {"path": str(elsewhere), "documents": 0}
    with pytest.raises(ValueError, match=r"manifest\.json: path .* leaves"):
        verify_section(str(tmp_path / "out"), "lt1024", section, SPECIAL)
    manifest = {"buckets": {"lt1024": {**section, "documents": 1}}, "validation": {"path": "../x", "documents": 1}}
    with pytest.raises(ValueError, match=r"manifest\.json: path .* leaves"):
        split_folders(str(tmp_path / "out"), manifest)
