"""`refinedweb tokenize --from OUT --executor ray`: re-tokenization runs on Ray, with every option
given honoured (here: the bucket edges), and gives the documents of OUT exactly."""

from __future__ import annotations

import json

import pytest

from pipelines.refinedweb import main
from shards import manifest as manifest_io
from shards.layout import join
from tests.ray.conftest import samples

pytestmark = pytest.mark.slow


def test_retokenize_on_ray_honours_the_options_given(ray_local, sample_output, tmp_path):
    new = str(tmp_path / "retokenized")
    assert main(["tokenize", "--from", sample_output, "--output", new, "--executor", "ray", "--tasks", "3",
                 "--bucket-edges", "512", "1024", "2048", "--shard-size", "1mb"]) == 0
    executor = json.load(open(join(new, "logs", "tokenize", "executor.json")))
    assert executor["cpus_per_task"] == 1 and executor["world_size"] == 3, "tokenize did not run on Ray"
    m, old = manifest_io.read(new), manifest_io.read(sample_output)
    assert list(m["buckets"]) == ["lt512", "512to1024", "1024to2048", "ge2048"]
    assert m["config"]["shard_size"] == "1mb" and m["config"]["val_fraction"] == old["config"]["val_fraction"]
    assert m["retokenized_from"]["root"] == sample_output and m["source"] == old["source"]
    assert m["documents"] == old["documents"] and m["filters"] == old["filters"]
    got, want = samples(new), samples(sample_output)  # same tokenizer: the same documents, rebucketed
    assert len(want) > 50 and sorted(got) == want
