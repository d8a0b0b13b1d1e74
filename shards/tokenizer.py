"""Which `tokenizer.json` a tokenizer spec names, and its fingerprints (what manifests and resumes record).

A spec is a `tokenizer.json` path, a folder holding one, or a Hugging Face Hub repo name, optionally
pinned as `NAME@REVISION` (Hub repo names cannot hold `@`). A Hub name without a revision takes the
commit in `PINNED` (else `main`); `pin` turns a branch or tag into its commit once, so every task of a
job fetches the same file. Kept apart from `shards.api` so that light tools (the dataset card) need no torch.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

# Hub tokenizers whose default revision is a fixed commit (no Hub call to resolve it; the commit of
# google-bert/bert-base-uncased's current tokenizer.json).
BERT_BASE_UNCASED_COMMIT = "86b5e0934494bd15c9632b12f734a8a67f723594"
PINNED = {"bert-base-uncased": BERT_BASE_UNCASED_COMMIT, "google-bert/bert-base-uncased": BERT_BASE_UNCASED_COMMIT}
COMMIT = re.compile(r"[0-9a-f]{40}")


def local_file(spec: str | Path) -> Path | None:
    """The local `tokenizer.json` a spec names, or None for a Hub name."""
    path = Path(spec)
    if path.is_dir():
        path = path / "tokenizer.json"
    if path.is_file():
        return path
    if Path(spec).exists() or str(spec).endswith(".json"):
        raise ValueError(f"tokenizer {spec}: no tokenizer.json there")
    return None


def hub_name_and_revision(spec: str) -> tuple[str, str]:
    """(repo, revision) of a Hub spec `NAME[@REVISION]`; the revision defaults to `PINNED`, else `main`."""
    name, _, revision = str(spec).partition("@")
    return name, revision or PINNED.get(name, "main")


def pin(spec: str) -> str:
    """A Hub spec as `NAME@COMMIT`, a branch or tag resolved here, once; a local spec unchanged."""
    if local_file(spec) is not None:
        return str(spec)
    name, revision = hub_name_and_revision(spec)
    if not COMMIT.fullmatch(revision):
        from huggingface_hub import HfApi

        try:
            revision = HfApi().model_info(name, revision=revision).sha
        except Exception as e:
            raise ValueError(f"tokenizer {spec}: cannot resolve revision {revision!r} of {name} on the Hub ({e}); "
                             f"pass a commit as --tokenizer {name}@COMMIT") from None
    return f"{name}@{revision}"


def tokenizer_file(spec: str | Path) -> Path:
    """The `tokenizer.json` a spec names (a Hub one downloaded at its revision, once per machine: a
    commit already in the Hugging Face cache is not fetched again)."""
    path = local_file(spec)
    if path is not None:
        return path
    from huggingface_hub import hf_hub_download

    name, revision = hub_name_and_revision(str(spec))
    try:
        return Path(hf_hub_download(name, "tokenizer.json", revision=revision))
    except Exception as e:
        raise ValueError(f"tokenizer {spec}: not a local tokenizer.json and not loadable from the Hub at revision "
                         f"{revision} ({e})") from None


def tokenizer_sha256(spec: str | Path) -> str:
    """The fingerprint the manifest records: sha256 of the `tokenizer.json` bytes."""
    return hashlib.sha256(tokenizer_file(spec).read_bytes()).hexdigest()


def content_sha256(spec: str | Path) -> str:
    """sha256 of the `tokenizer.json` parsed and re-dumped with sorted keys: the same tokenizer at
    another path, from the Hub or formatted otherwise hashes alike (what a resume compares)."""
    data = json.loads(tokenizer_file(spec).read_text(encoding="utf-8"))
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
