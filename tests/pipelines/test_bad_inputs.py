"""Each bad input is either skipped and counted, or stops the job with one line naming the file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shards import manifest as manifest_io
from shards.layout import SAMPLE_DIR

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).parents[2] / "pipelines" / "refinedweb.py"
TEN_MB = "The quick brown fox jumps over the lazy dog. " * (10_000_000 // 45)


def unvalidated_strings(values: list[bytes | None]) -> pa.Array:
    """A parquet `string` column holding arbitrary bytes (as broken writers produce)."""
    data = b"".join(v or b"" for v in values)
    offsets = np.cumsum([0] + [len(v or b"") for v in values]).astype(np.int32)
    validity = pa.array([v is not None for v in values]).buffers()[1]
    return pa.Array.from_buffers(pa.string(), len(values), [validity, pa.py_buffer(offsets.tobytes()),
                                                             pa.py_buffer(data)])


def test_skipped_rows_are_counted_and_kept_for_audit(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(SAMPLE_DIR / "train-00000-of-00004.parquet", src)
    bad = [None, b"", b" \n\t ", b"broken \xff\xfe utf-8", b"lone \xed\xa0\x80 surrogate", TEN_MB.encode()]
    pq.write_table(pa.table({"content": unvalidated_strings(bad), "url": [f"https://x.org/{i}" for i in range(6)]}),
                   src / "bad-rows.parquet")
    out = tmp_path / "out"
    # as a plain script, the way `ray submit` runs it
    proc = subprocess.run([sys.executable, str(SCRIPT), "all", "--output", str(out), "--input", str(src),
                           "--tasks", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = manifest_io.read(str(out))
    good_rows = pq.read_metadata(src / "train-00000-of-00004.parquet").num_rows
    assert m["documents"]["read"] == good_rows + len(bad)  # nothing lost on the way in
    assert m["filters"]["content"]["reasons"]["empty"] >= 3  # null, empty, whitespace (+ the sample's own)
    assert m["filters"]["content"]["reasons"]["invalid_utf8"] == 2
    assert m["filters"]["token_length"]["reasons"]["too_long"] == 1
    audit = pq.read_table(out / "removed" / "content").to_pylist()
    assert {r["reason"] for r in audit} == {"empty", "invalid_utf8"}
    assert any(r["url"] == "https://x.org/3" and "\ufffd" in r["text"] for r in audit)
    too_long = pq.read_table(out / "removed" / "token_length").to_pylist()
    assert [len(r["text"]) for r in too_long] == [len(TEN_MB)]
    kept = sum(b["documents"] for b in m["buckets"].values()) + m["validation"]["documents"]
    assert kept == m["documents"]["kept"] > 0


def _corrupt_files(folder: Path) -> dict[str, Path]:
    sample = SAMPLE_DIR / "train-00001-of-00004.parquet"
    files = {}
    table = pq.read_table(sample)
    files["missing"] = folder / "no-content.parquet"
    pq.write_table(table.drop(["content"]), files["missing"])
    files["type"] = folder / "int-content.parquet"
    pq.write_table(table.set_column(0, "content", pa.array(range(table.num_rows))), files["type"])
    files["truncated"] = folder / "truncated.parquet"
    data = sample.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])
    return files


@pytest.mark.parametrize("case,message", [("missing", "no 'content' column"), ("type", "has type int64"),
                                          ("truncated", "not a readable parquet file")])
def test_broken_file_stops_the_job_naming_it(tmp_path, case, message, refinedweb):
    src = tmp_path / "src"
    src.mkdir()
    bad = _corrupt_files(tmp_path)[case]
    shutil.copy(bad, src / bad.name)
    proc = refinedweb("all", "--output", str(tmp_path / "out"), "--input", str(src), "--tasks", "1",
                          timeout=180, check=False)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and bad.name in last and message in last, last
    assert not (tmp_path / "out" / "manifest.json").exists()
