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


def test_command_line_defaults_are_the_dataclass_defaults():
    import dataclasses

    from pipelines.config import FIELDS

    _, cfg = parse_args(["all", "--output", "o"])
    assert cfg == JobConfig(output="o")
    for step in ("download", "filter", "tokenize", "mix", "all"):
        _, cfg = parse_args([step, "-o", "o", "--tasks", "7", "--bucket-edges", "512", "1024", "--stage2", "0", ".5", ".5"])
        assert cfg.tasks == 7 and cfg.bucket_edges == (512, 1024) and cfg.stage2_choices == ((0, 0.0), (512, 0.5), (1024, 0.5))
    cli = {f.name for f in dataclasses.fields(JobConfig) if f.metadata.get("flag", "") is not None}
    assert cli == set(FIELDS) - {"filters", "filtered", "stage2_choices"}  # those three: --disable/--enable, --stage2


def test_from_is_a_tokenize_option_and_refuses_document_options(tmp_path):
    import json

    with pytest.raises(SystemExit):
        parse_args(["filter", "--output", "o", "--from", "x"])
    src = tmp_path / "src"
    src.mkdir()
    recorded = JobConfig(output=str(src), bucket_edges=(512, 1024, 2048), val_fraction=0.2, tasks=5,
                         executor="ray", min_tokens=20).to_dict()
    part = {"path": "mds/val", "fraction": 0.2, "documents": 0, "tokens": 0, "shards": 0}
    tokenizer = {"name": "t", "sha256": "0", "vocab_size": 5, "dtype": "uint16",
                 "special_tokens": dict(zip(("pad", "unk", "cls", "sep", "mask"), range(5)))}
    (src / "manifest.json").write_text(json.dumps({"format_version": 1, "tokenizer": tokenizer, "buckets": {},
                                                   "validation": part, "config": recorded}))
    _, cfg = parse_args(["tokenize", "--from", str(src), "-o", "new", "--shard-size", "1mb", "--executor", "local"])
    assert cfg.retokenize_from == str(src) and cfg.filtered == str(src / "filtered") and cfg.output == "new"
    assert cfg.bucket_edges == (512, 1024, 2048) and cfg.val_fraction == 0.2 and cfg.min_tokens == 20  # FROM's
    assert cfg.shard_size == "1mb" and cfg.executor == "local" and cfg.tasks == 2  # given / this run's defaults
    assert cfg.logging_dir == "new/logs"
    for refused in (["--min-tokens", "5"], ["--disable", "url"], ["--dedup", "none"], ["--input", "sample"]):
        with pytest.raises(ValueError, match="cannot apply with --from"):
            parse_args(["tokenize", "--from", str(src), "-o", "new", *refused])
    with pytest.raises(ValueError, match="must differ from --from"):
        parse_args(["tokenize", "--from", str(src), "-o", str(src) + "/"])
