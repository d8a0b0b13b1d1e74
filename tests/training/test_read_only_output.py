"""Readers never write into OUT: training (with validation) and `convert` from an OUT made read-only
leave every file in it as it was, and streaming decompressed the shards into a cache folder; with
`data.validate_hash`, a flipped byte in a shard stops training, naming the shard."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from shards import manifest as manifest_io
from shards.convert import convert
from shards.streams import mixture_streams, validation_streams
from training.loop import Trainer
from tests.training.test_trainer import tiny


def listing(root: Path) -> dict[str, tuple]:
    """Every file and folder under `root`: size, mtime and sha256 of each file."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        out[str(p.relative_to(root))] = ("dir",) if p.is_dir() else (
            st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


@pytest.fixture
def read_only(out_copy):
    subprocess.run(["chmod", "-R", "a-w", str(out_copy)], check=True)
    yield out_copy
    subprocess.run(["chmod", "-R", "u+w", str(out_copy)], check=True)


def test_training_and_convert_from_a_read_only_output_change_nothing_in_it(read_only, tmp_path):
    out = str(read_only)
    before = listing(read_only)
    trainer = Trainer(tiny(out, tmp_path / "run", "steps=2", "validation.every=2", "validation.max_documents=4"))
    assert trainer.train() is not None
    record = convert(out, "modernbert", str(tmp_path / "dest"))
    m = manifest_io.read(out)
    assert sum(s["documents"] for s in record["splits"].values()) == \
        sum(b["documents"] for b in m["buckets"].values()) + m["validation"]["documents"]
    assert listing(read_only) == before, "a reader wrote into OUT"
    cached = [list(Path(s.local).rglob("*.mds")) for s in mixture_streams(out) + validation_streams(out)]
    assert all(not Path(s.local).is_relative_to(read_only) for s in mixture_streams(out))
    assert any(cached[:-1]) and cached[-1], "training and validation read no decompressed shard from the cache"


def test_training_with_validate_hash_stops_naming_a_flipped_shard(out_copy, flipped_shard, tmp_path):
    trainer = Trainer(tiny(str(out_copy), tmp_path / "run", "steps=1000", "data.validate_hash=xxh64"))
    with pytest.raises(ValueError, match=re.escape(str(flipped_shard)) + ".*Checksum failure"):
        trainer.train()
    assert trainer.step < 1000
