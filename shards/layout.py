"""Where everything lives in a pipeline output folder (`OUT`), local or remote.

One place names every folder, the length buckets and the validation split, so the pipeline that
writes and the trainers that read can never disagree.

    OUT/raw/                   mirrored source parquet files
    OUT/removed/<filter>/      documents each filter dropped (audit)
    OUT/removed/bad_files/     `--on-bad-file skip`: the source files skipped, per filter task (<rank>.json)
    OUT/dedup/<part>/          dedup intermediates (candidates, signatures, …): safe to delete after a run
    OUT/filtered/              documents that passed, as parquet
    OUT/mds/<bucket>/          MDS shards of one length bucket (one merged index.json)
    OUT/mds/val/               held-out validation documents (all lengths)
    OUT/mds/materialized/<m>/  `--materialize`: mixture <m> written out as one MDS set
    OUT/manifest.json          counts, config, tokenizer: see `shards.manifest`
    OUT/mixtures/<name>.json   (bucket path, proportion) lists: see `shards.mixture`
    OUT/logs/<stage>/          Datatrove logs, stats and completion markers; settings.json (resume check)
    OUT/logs/lease.json        the running driver's lease (owner, heartbeat): one writer per OUT
    OUT/README.md, OUT/token_lengths.png   the dataset card (`python -m shards card`)
    DEST/conversion.json       what `python -m shards convert` wrote into DEST

Small files (settings, manifest, mixtures, indexes, conversion.json) are written whole: `shards.atomic`.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

BUNDLED = Path(__file__).parent / "data"
BUNDLED_REL = "shards/data"  # BUNDLED relative to the checkout, as recorded settings name it
BERT_TOKENIZER = BUNDLED / "tokenizers" / "bert-base-uncased" / "tokenizer.json"
SAMPLE_DIR = BUNDLED / "refinedweb-sample"

RAW, REMOVED, DEDUP, FILTERED, MDS, MIXTURES, LOGS = "raw", "removed", "dedup", "filtered", "mds", "mixtures", "logs"
MANIFEST = "manifest.json"
VALIDATION = "val"
MATERIALIZED = "materialized"  # under MDS
SETTINGS = "settings.json"  # under LOGS/<stage>
LEASE = "lease.json"  # under LOGS
CARD, CARD_HISTOGRAM = "README.md", "token_lengths.png"
CONVERSION = "conversion.json"
BAD_FILES = "bad_files"  # under REMOVED
DEFAULT_EDGES = (1024, 2048)


def join(root: str | Path, *parts: str) -> str:
    """Join path parts under a local folder or a URL (`s3://…`) alike."""
    root = str(root)
    if "://" in root:
        return posixpath.join(root, *parts)
    return str(Path(root, *parts))


def portable(value):
    """A local path inside the bundled data as `shards/data/…`, anything else unchanged: what recorded
    settings hold, so that another clone of the repository (at another path) resumes the same OUT."""
    if not isinstance(value, str) or "://" in value:
        return value
    try:
        rel = Path(value).resolve().relative_to(BUNDLED.resolve())
    except (ValueError, OSError):
        return value
    return posixpath.join(BUNDLED_REL, rel.as_posix())


def join_within(root: str | Path, rel: str, where: str) -> str:
    """`join(root, rel)` for a path read from a file (`where`: a manifest, mixture or index.json),
    refused unless it stays under `root`: whoever can write OUT must not make us read elsewhere."""
    absolute = not isinstance(rel, str) or "://" in rel or re.match(r"[/\\]|[A-Za-z]:", rel)
    if absolute or ".." in re.split(r"[/\\]", rel):
        raise ValueError(f"{where}: path {rel!r} leaves {root}: paths in it must be relative, without '..'; "
                         "it was not written by this pipeline (or was edited): regenerate it, or do not read it")
    return join(root, rel)


@dataclass(frozen=True)
class Bucket:
    """Documents with `lo <= num_tokens < hi` (`hi=None`: no upper bound)."""

    lo: int
    hi: int | None

    @property
    def name(self) -> str:
        if self.lo == 0:
            return f"lt{self.hi}"
        if self.hi is None:
            return f"ge{self.lo}"
        return f"{self.lo}to{self.hi}"

    @property
    def path(self) -> str:
        """Path relative to `OUT`, as written in manifests and mixtures."""
        return f"{MDS}/{self.name}"

    def contains(self, num_tokens: int) -> bool:
        return num_tokens >= self.lo and (self.hi is None or num_tokens < self.hi)


def buckets(edges: tuple[int, ...] = DEFAULT_EDGES) -> list[Bucket]:
    """The buckets cut by `edges`; every token count falls in exactly one."""
    edges = tuple(int(e) for e in edges)
    if not edges or any(e <= 0 for e in edges) or list(edges) != sorted(set(edges)):
        raise ValueError(f"bucket edges must be positive and strictly increasing, got {edges}")
    bounds = (0, *edges, None)
    return [Bucket(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]


def bucket_for(num_tokens: int, edges: tuple[int, ...] = DEFAULT_EDGES) -> Bucket:
    for b in buckets(edges):
        if b.contains(num_tokens):
            return b
    raise AssertionError(f"no bucket for {num_tokens} tokens with edges {edges}")


def is_validation(doc_id: str, fraction: float) -> bool:
    """Whether a document belongs to the held-out split: a stable hash of its id, so every
    writer and reader, on any machine, puts the same documents aside."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    h = int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest(), "big")
    return h < fraction * 2**64
