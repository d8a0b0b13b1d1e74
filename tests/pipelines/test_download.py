"""`download`: mirror, skip complete files, never leave a partial file under its final name, retry."""

from __future__ import annotations

import pytest

from pipelines.config import JobConfig
from pipelines.download import MirrorFiles, list_source_files, with_retries
from shards.layout import SAMPLE_DIR

GLOB = JobConfig.glob


def run(step: MirrorFiles, world_size: int = 1):
    for rank in range(world_size):
        list(step.run(None, rank, world_size))
    return step.stats.stats


def test_mirror_skip_and_refetch(tmp_path):
    dest = tmp_path / "raw"
    stats = run(MirrorFiles(str(SAMPLE_DIR), str(dest), GLOB, -1), world_size=2)
    assert stats["files_copied"].total == 4
    for f in SAMPLE_DIR.glob("*.parquet"):
        assert (dest / f.name).read_bytes() == f.read_bytes()
    # a truncated copy (wrong size) is fetched again, complete ones are skipped
    victim = dest / "train-00002-of-00004.parquet"
    victim.write_bytes(victim.read_bytes()[:100])
    stats = run(MirrorFiles(str(SAMPLE_DIR), str(dest), GLOB, -1))
    assert stats["files_skipped"].total == 3 and stats["files_copied"].total == 1
    assert victim.stat().st_size == (SAMPLE_DIR / victim.name).stat().st_size
    assert not list(dest.glob("*.partial"))


def test_limit_files_and_empty_source(tmp_path):
    assert len(list_source_files(str(SAMPLE_DIR), GLOB, limit_files=2)) == 2
    with pytest.raises(ValueError, match="no files matching"):
        list_source_files(str(tmp_path), GLOB)


def test_failed_copy_never_looks_complete(tmp_path, monkeypatch):
    dest = tmp_path / "raw"
    step = MirrorFiles(str(SAMPLE_DIR), str(dest), GLOB, limit_files=1)
    monkeypatch.setattr("pipelines.download.CHUNK", 1000)
    real_open = __import__("fsspec").implementations.local.LocalFileSystem._open
    calls = {"n": 0}

    def flaky_open(self, path, mode="rb", **kw):
        f = real_open(self, path, mode, **kw)
        if "r" in mode and path.endswith(".parquet"):
            calls["n"] += 1
            f.read = lambda *a: (_ for _ in ()).throw(PermissionError("disk gone"))
        return f

    monkeypatch.setattr("fsspec.implementations.local.LocalFileSystem._open", flaky_open)
    with pytest.raises(PermissionError):
        run(step)
    assert calls["n"] == 1 and not list(dest.glob("*.parquet"))  # only the .partial name exists


def test_transient_errors_retry_with_backoff(monkeypatch):
    monkeypatch.setattr("pipelines.download.time.sleep", lambda s: sleeps.append(s))
    sleeps, attempts = [], iter([ConnectionError("reset"), TimeoutError("slow"), "ok"])

    def flaky():
        x = next(attempts)
        if isinstance(x, Exception):
            raise x
        return x

    assert with_retries("src", flaky) == "ok"
    assert sleeps == [1.0, 2.0]
