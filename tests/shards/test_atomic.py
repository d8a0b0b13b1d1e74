"""Small files are written whole: a crash before the rename leaves the previous content (or none)."""

from __future__ import annotations

import json
import os

import pytest

from pipelines.config import JobConfig, check_resumable
from shards import atomic


def crash_at_rename(monkeypatch):
    def crash(src, dst):
        raise KeyboardInterrupt(f"killed before {src} -> {dst}")

    monkeypatch.setattr(os, "replace", crash)


def test_write_text_killed_before_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "a.json"
    atomic.write_text(str(path), "old")
    crash_at_rename(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_text(str(path), "new")
    monkeypatch.undo()
    assert path.read_text() == "old" and os.listdir(path.parent) == ["a.json"]  # no temporary left behind
    atomic.write_text(str(path), "new")
    assert path.read_text() == "new"


def test_stage_settings_killed_mid_write_do_not_block_the_rerun(tmp_path, monkeypatch):
    cfg = JobConfig(output=str(tmp_path / "out"), input="sample")
    settings = tmp_path / "out" / "logs" / "download" / "settings.json"
    crash_at_rename(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        check_resumable(cfg, "download")
    monkeypatch.undo()
    assert not settings.exists()  # never half a settings file
    check_resumable(cfg, "download")
    assert json.loads(settings.read_text())["tasks"] == cfg.tasks
    check_resumable(cfg, "download")  # the rerun resumes
