"""Settings checks: bad values explain the fix; a rerun with changed settings is refused."""

from __future__ import annotations

import pytest

from pipelines.config import JobConfig, check_resumable
from pipelines.refinedweb import parse_args


def test_rerun_with_other_settings_is_refused(tmp_path):
    cfg = JobConfig(output=str(tmp_path))
    check_resumable(cfg, "tokenize")
    check_resumable(cfg, "tokenize")  # same settings: resumes
    with pytest.raises(ValueError, match="val_fraction: 0.001 -> 0.1"):
        check_resumable(JobConfig(output=str(tmp_path), val_fraction=0.1), "tokenize")


def test_bad_settings_say_how_to_fix():
    with pytest.raises(ValueError, match="not bucket edges"):
        JobConfig(output="x", bucket_edges=(512,))
    with pytest.raises(ValueError, match="unknown filter"):
        JobConfig(output="x", filters=("nope",))


def test_cli_filter_switches_and_stage2():
    step, cfg = parse_args(["all", "--output", "o", "--disable", "url", "--enable", "language",
                            "--stage2", "0.5", "0.25", "0.25", "--dedup", "minhash"])
    assert step == "all" and "url" not in cfg.filters and "language" in cfg.filters and cfg.dedup == "minhash"
    assert cfg.stage2_choices == ((0, 0.5), (1024, 0.25), (2048, 0.25))
    assert cfg.logging_dir.endswith("o/logs")


def test_default_source_is_refinedweb_on_the_hub_and_sample_names_the_bundled_one():
    from shards.layout import SAMPLE_DIR

    _, cfg = parse_args(["download", "--output", "o"])
    assert cfg.input == "hf://datasets/tiiuae/falcon-refinedweb/data"
    _, cfg = parse_args(["all", "--input", "sample", "--output", "o"])
    assert cfg.input == str(SAMPLE_DIR) and len(list(SAMPLE_DIR.glob("*.parquet"))) == 4
