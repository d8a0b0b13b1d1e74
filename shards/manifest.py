"""`OUT/manifest.json`: the record of what a pipeline run produced, and the check that it is whole.

Consumers rely on these keys (the pipeline writes more: config, filters, dedup, histograms):

    format_version: int
    tokenizer:  {name, sha256, vocab_size, dtype, special_tokens: {pad, unk, cls, sep, mask}}
    buckets:    {<name>: {path, min_tokens, max_tokens, documents, tokens, shards}}
    validation: {path, fraction, documents, tokens, shards}
    files:      {<path under OUT>: sha256} of every index.json (merged and per task) and mixture
                file the manifest names, recorded by `write` (`shards verify` checks them)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import fsspec

from shards import atomic, mds
from shards.layout import MANIFEST, join, join_within

FORMAT_VERSION = 1
SPECIAL_TOKENS = ("pad", "unk", "cls", "sep", "mask")


@dataclass(frozen=True)
class Vocab:
    """What windowing, masking and padding need from the manifest's tokenizer record."""

    pad: int
    cls: int
    sep: int
    mask: int
    special: tuple[int, ...]
    size: int

    @classmethod
    def from_manifest(cls, manifest: dict) -> "Vocab":
        tok = manifest["tokenizer"]
        s = tok["special_tokens"]
        return cls(s["pad"], s["cls"], s["sep"], s["mask"], tuple(sorted(set(s.values()))), int(tok["vocab_size"]))


def read(root: str) -> dict:
    """Load and check the manifest of the pipeline output at `root` (a folder or URL)."""
    path = join(root, MANIFEST)
    try:
        with fsspec.open(path, "r") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} not found: run the pipeline's `mix` step (or `all`) on {root} first"
        ) from None
    validate(manifest, where=path)
    return manifest


def write(root: str, manifest: dict) -> str:
    """Write the manifest whole (`shards.atomic`), with the sha256 of the small files it names
    (`files`): readers never see half of it, and `shards verify` can prove the indexes and
    mixtures are the ones it describes."""
    validate(manifest, where="manifest to write")
    manifest = {**manifest, "files": sealed_files(root, manifest)}
    path = join(root, MANIFEST)
    return atomic.write_text(path, json.dumps(manifest, indent=2, sort_keys=False))


def file_sha256(path: str) -> str:
    """sha256 of a local or remote file, read in 16 MiB blocks (weights files are GBs)."""
    digest = hashlib.sha256()
    with fsspec.open(path, "rb") as f:
        while block := f.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def sections(manifest: dict) -> dict[str, dict]:
    """Every MDS set the manifest describes: buckets, `validation`, `materialized/<mixture>`."""
    found = {**manifest["buckets"], "validation": manifest["validation"]}
    for name, mix in manifest.get("mixtures", {}).items():
        if "materialized" in mix:
            found[f"materialized/{name}"] = mix["materialized"]
    return found


def small_files(root: str, manifest: dict) -> list[str]:
    """Paths under `root` of the index files (each set's merged one, then its tasks') and the
    mixture files the manifest names."""
    where = join(root, MANIFEST)
    rels = []
    for section in sections(manifest).values():
        folder = join_within(root, section["path"], where)
        rels.append(f"{section['path']}/{mds.INDEX}")
        rels += [f"{section['path']}/{task}/{mds.INDEX}" for task in mds.task_folders(folder)]
    rels += [mix["path"] for mix in manifest.get("mixtures", {}).values() if "path" in mix]
    return rels


def sealed_files(root: str, manifest: dict) -> dict[str, str]:
    where = join(root, MANIFEST)
    return {rel: file_sha256(join_within(root, rel, where)) for rel in small_files(root, manifest)}


def validate(manifest: dict, where: str = "manifest") -> None:
    """Raise ValueError naming the first missing or malformed key."""

    def need(obj: dict, key: str, ctx: str):
        if not isinstance(obj, dict) or key not in obj:
            raise ValueError(f"{where}: missing '{ctx}{key}'; rerun the pipeline's `mix` step")
        return obj[key]

    version = need(manifest, "format_version", "")
    if version != FORMAT_VERSION:
        raise ValueError(f"{where}: format_version {version}, this code reads {FORMAT_VERSION}")
    tok = need(manifest, "tokenizer", "")
    for key in ("name", "sha256", "vocab_size", "dtype"):
        need(tok, key, "tokenizer.")
    special = need(tok, "special_tokens", "tokenizer.")
    for key in SPECIAL_TOKENS:
        need(special, key, "tokenizer.special_tokens.")
    for name, bucket in need(manifest, "buckets", "").items():
        for key in ("path", "min_tokens", "max_tokens", "documents", "tokens", "shards"):
            need(bucket, key, f"buckets.{name}.")
    val = need(manifest, "validation", "")
    for key in ("path", "fraction", "documents", "tokens", "shards"):
        need(val, key, "validation.")
