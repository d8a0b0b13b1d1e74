"""A bad source file stops the job naming it; `--on-bad-file skip` reruns past it, counts and records it."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shards import manifest as manifest_io
from shards.layout import SAMPLE_DIR

pytestmark = pytest.mark.slow
NO_FILTERS = [a for f in ("url", "token_length", "gopher_repetition", "gopher_quality", "c4_quality",
                          "fineweb_quality") for a in ("--disable", f)]
FILTER = ["--tasks", "1", *NO_FILTERS, "--dedup", "none"]


def test_nested_column_stops_then_skip_resumes_and_counts_it(tmp_path, refinedweb):
    src, out = tmp_path / "src", str(tmp_path / "out")
    src.mkdir()
    good = SAMPLE_DIR / "train-00000-of-00004.parquet"
    shutil.copy(good, src)
    table = pq.read_table(good)
    nested = pa.array([{"host": u, "port": 80} for u in table.column("url").to_pylist()])
    pq.write_table(table.set_column(table.schema.get_field_index("url"), "url", nested), src / "nested-url.parquet")
    refinedweb("download", "--output", out, "--input", str(src), "--tasks", "1")

    proc = refinedweb("filter", "--output", out, *FILTER, check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "nested-url.parquet" in last and "nested-type column" in last, last

    refinedweb("filter", "--output", out, *FILTER, "--on-bad-file", "skip")  # the settings check lets it resume
    refinedweb("tokenize", "--output", out, "--tasks", "1")
    mix = refinedweb("mix", "--output", out, *FILTER)
    m = manifest_io.read(out)
    assert m["documents"]["bad_files"] == 1 and "skipped 1 bad source file" in mix.stdout
    [bad] = m["bad_files"]
    assert bad["file"].endswith("nested-url.parquet") and "nested-type column" in bad["error"]
    assert bad["documents_read"] == 0
    assert m["documents"]["read"] == pq.read_metadata(good).num_rows  # the good file, whole; none of the bad
