"""`python -m shards card OUT`: a Hugging Face dataset card whose numbers are the manifest's, and a PNG."""

import ast
import shutil

import pytest
from huggingface_hub import DatasetCard
from PIL import Image

from shards import manifest as manifest_io
from shards.__main__ import main
from shards.card import length_histogram


@pytest.fixture(scope="module")
def card(sample_output, tmp_path_factory):
    """The card of the sample's output, written next to a copy of its manifest (the session's OUT stays as it is)."""
    root = tmp_path_factory.mktemp("card")
    shutil.copy(f"{sample_output}/manifest.json", root / "manifest.json")
    assert main(["card", str(root)]) == 0
    return root, manifest_io.read(sample_output)


def test_header_is_a_hub_dataset_card(card):
    root, _ = card
    data = DatasetCard.load(root / "README.md").data
    assert data.license == "odc-by"
    assert data.task_categories == ["fill-mask"]
    assert data.source_datasets == ["tiiuae/falcon-refinedweb"]


def test_body_has_the_manifests_counts(card):
    root, m = card
    text = (root / "README.md").read_text()
    parts = [*m["buckets"].values(), m["validation"]]
    documents, tokens = sum(p["documents"] for p in parts), sum(p["tokens"] for p in parts)
    assert f"{documents:,} documents and {tokens:,} tokens" in text
    assert f"| **total** |  |  | {documents:,} | {tokens:,} |" in text
    for name, b in m["buckets"].items():
        assert f"| {name} | `{b['path']}` |" in text
        assert f"| {b['documents']:,} | {b['tokens']:,} | {b['shards']} |" in text
    removed = {n: f["removed"] for n, f in m["filters"].items()}
    assert any(removed.values()), "the case under test: filters that removed documents"
    for name, f in m["filters"].items():
        assert f"| {name} | {f['in']:,} | {f['kept']:,} | {f['removed']:,} |" in text
    d = m["dedup"]
    assert d["removed"] > 0 and f"| {d['in']:,} | {d['kept']:,} | {d['removed']:,} |" in text
    assert f"{m['documents']['read']:,} documents read" in text
    assert m["tokenizer"]["sha256"] in text and m["tokenizer"]["name"] in text
    assert '"bucket_edges"' in text  # the pipeline config


def test_histogram_png_shows_every_document(card):
    root, m = card
    edges, counts = length_histogram(m)
    assert sum(counts) == sum(p["documents"] for p in (*m["buckets"].values(), m["validation"]))
    assert "![Document lengths](token_lengths.png)" in (root / "README.md").read_text()
    with Image.open(root / "token_lengths.png") as img:
        assert img.format == "PNG" and img.width > 300 and img.height > 200


def test_usage_snippet_is_valid_python_naming_the_recorded_tokenizer(card):
    root, _ = card
    text = (root / "README.md").read_text()
    snippet = text.split("```python\n", 1)[1].split("```", 1)[0]
    ast.parse(snippet)
    assert "BERT_TOKENIZER as TOKENIZER" in snippet and "open_dataset(" in snippet
