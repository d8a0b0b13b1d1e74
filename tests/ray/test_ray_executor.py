"""`--executor ray` on a local Ray instance, writing to a real S3 endpoint: the local executor's output
exactly, streamed back by `StreamingDataset`; resumable; loud on failure; refuses to guess a cluster."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import cloudpickle
import pytest
import s3fs
from streaming import StreamingDataset

from pipelines.executors import refuse_local_paths, tasks_leave_this_node
from pipelines.refinedweb import STEPS, build, main, parse_args
from shards import manifest as manifest_io
from shards.layout import BERT_TOKENIZER, SAMPLE_DIR, buckets, join
from shards.streams import mixture_streams
from shards.verify import verify
from tests.ray.conftest import BUCKET, FOLDERS, counts, free_port, samples

pytestmark = pytest.mark.slow
ARGS = ["--input", "sample", "--executor", "ray", "--tasks", "2", "--workers", "2", "--val-fraction", "0.05"]  # as `sample_output`
OUT = f"s3://{BUCKET}/refinedweb"


@pytest.fixture(scope="module")
def ray_output(ray_local, s3) -> str:
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert main(["all", "--output", OUT, *ARGS]) == 0
    assert os.environ["AWS_ENDPOINT_URL"] == s3  # what s3fs reads, here and in the Ray tasks
    return OUT


def streamed(ds: StreamingDataset) -> list[tuple[str, tuple[int, ...]]]:
    return [(s["id"], tuple(s["input_ids"].tolist())) for s in (ds[i] for i in range(len(ds)))]


def test_ray_shards_equal_local_executor(ray_output, sample_output):
    fs = s3fs.S3FileSystem()
    for key in ("manifest.json", "mixtures/stage2.json", "mds/ge2048/index.json", "logs/tokenize/completions/00001"):
        assert fs.exists(f"{BUCKET}/refinedweb/{key}"), f"{key} is not on the S3 server"
    executor = json.loads(fs.cat(f"{BUCKET}/refinedweb/logs/tokenize/executor.json"))
    assert executor["cpus_per_task"] == 1 and executor["world_size"] == 2, "tokenize did not run on Ray"
    want = samples(sample_output)
    assert len(want) > 50
    assert samples(ray_output) == want
    assert counts(manifest_io.read(ray_output)) == counts(manifest_io.read(sample_output))
    assert sum(c.documents for c in verify(ray_output).values()) == len(want)  # hashes re-checked over S3


def test_streaming_dataset_streams_every_token_back_from_s3(ray_output, sample_output, tmp_path):
    got = {rel: streamed(StreamingDataset(remote=join(ray_output, rel), local=str(tmp_path / "cache" / rel),
                                          shuffle=False, batch_size=1)) for rel in FOLDERS}
    want = samples(sample_output)
    assert len(want) > 50 and sorted(s for rel in FOLDERS for s in got[rel]) == want
    # the stage-1 mixture file, as a trainer reads it: every training document, none of validation
    mixed = StreamingDataset(streams=mixture_streams(ray_output, "stage1", cache_dir=str(tmp_path / "mix")),
                             shuffle=False, batch_size=1)
    assert got["mds/val"] and set(streamed(mixed)) == set(want) - set(got["mds/val"])


def test_rerun_redoes_only_the_unfinished_task(ray_output):
    fs, out = s3fs.S3FileSystem(), f"s3://{BUCKET}/rerun"
    fs.copy(f"{BUCKET}/refinedweb", f"{BUCKET}/rerun", recursive=True)
    logs = f"{BUCKET}/rerun/logs/tokenize"
    fs.rm(f"{logs}/completions/00001")  # task 1 "crashed" after writing part of its shards
    for b in buckets():
        fs.rm(f"{BUCKET}/rerun/{b.path}/00001", recursive=True)
    fs.pipe(f"{BUCKET}/rerun/{buckets()[0].path}/00001/shard.00000.mds.zstd", b"half a shard")
    stats0 = fs.info(f"{logs}/stats/00000.json")["LastModified"]
    assert main(["all", "--output", out, *ARGS]) == 0
    fs.invalidate_cache()
    assert fs.exists(f"{logs}/completions/00001")
    assert fs.info(f"{logs}/stats/00000.json")["LastModified"] == stats0, "the finished task 0 ran again"
    assert samples(out) == samples(ray_output)


def test_failed_task_stops_the_job_naming_the_file(ray_local, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "raw").mkdir(parents=True)
    first, second = sorted(SAMPLE_DIR.glob("*.parquet"))[:2]
    shutil.copy(first, out / "raw" / "a.parquet")
    (out / "raw" / "b.parquet").write_bytes(second.read_bytes()[:3000])  # truncated
    assert main(["filter", "--output", str(out), *ARGS]) == 2
    err = capsys.readouterr().err
    assert "tasks [1] of 2 failed" in err and "b.parquet: not a readable parquet file" in err, err
    assert (out / "logs" / "filter" / "completions" / "00000").exists()  # the good task finished and stays done


def test_pickled_pipeline_is_light(tmp_path):
    """The tokenizer and word lists load inside the tasks: every stage pickles to a few kB."""
    _, cfg = parse_args(["all", "--output", str(tmp_path / "out"), *ARGS])
    executor, sizes = build(cfg, STEPS), {}
    while executor is not None:
        sizes[executor.logging_dir.path] = len(cloudpickle.dumps(executor.pipeline))
        executor = executor.depends
    assert len(sizes) == 7 and max(sizes.values()) < 32_000, sizes
    assert BERT_TOKENIZER.stat().st_size > 32_000  # a loaded tokenizer could not hide under the bound


def test_no_cluster_at_ray_address_is_a_clear_error_not_a_new_instance(tmp_path):
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    proc = subprocess.run([sys.executable, "-m", "pipelines.refinedweb", "all", "--output", str(tmp_path / "out"),
                           *ARGS], env=os.environ | {"RAY_ADDRESS": address}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"no Ray cluster at '{address}'" in proc.stderr and "ray start --head" in proc.stderr
    assert "Started a local Ray instance" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out" / "logs").exists()


def test_local_paths_refused_when_tasks_leave_this_node(ray_local):
    paths = {"--output": "/data/out", "--logging-dir": "s3://bucket/out/logs"}
    with pytest.raises(ValueError, match=r"--output /data/out is on this machine's disk.*s3://"):
        refuse_local_paths(paths, multi_node=True)
    refuse_local_paths({"--output": "s3://b/out", "--logging-dir": "s3://b/out/logs"}, multi_node=True)
    assert not tasks_leave_this_node()  # the test instance: one node with CPUs, where local paths are fine
    refuse_local_paths(paths, multi_node=tasks_leave_this_node())
