"""Turn a mixture (by name or file) into `streaming.Stream` objects any StreamingDataset takes.

Invariant: reading never writes into OUT. Every root, local or remote, is the Stream's `remote`;
streaming copies and decompresses its shards into a local cache folder, one per dataset content:
`<cache>/<hash of the root>/<bucket path>/<sha256 of its index.json, 16 hex>/`. Every rank and
DataLoader worker of a node that reads the same OUT gets the same folder (streaming requires
that), and an OUT rewritten with other shards gets a new one (streaming trusts a cached
`index.json`, so a shared folder would serve the old shards). Old folders may be deleted freely.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import fsspec
from streaming import Stream, StreamingDataset

from shards import mixture as mixture_math
from shards import manifest as manifest_io
from shards import mds, shm_tracker, stale_shm
from shards.layout import MANIFEST, MIXTURES, join, join_within

CACHE_ENV = "NEOBERT_STREAM_CACHE"
log = logging.getLogger(__name__)
_announced: set[str] = set()
shm_tracker.repair()


def default_cache_dir() -> str:
    """`$NEOBERT_STREAM_CACHE`, else `$XDG_CACHE_HOME/neobert/streams` (`~/.cache/neobert/streams`)."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    return str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "neobert", "streams"))


def _is_remote(path: str) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def cache_folder(root: str, rel: str, folder: str, cache_dir: str | None) -> str:
    """Where streaming keeps the shards of `folder` (= `root/rel`): see the module docstring."""
    cache_dir = cache_dir or default_cache_dir()
    source = str(root) if _is_remote(root) else os.path.abspath(root)
    if source not in _announced:
        _announced.add(source)
        log.info("streaming %s through the cache %s", source, cache_dir)
    key = hashlib.blake2s(source.encode("utf-8"), digest_size=8).hexdigest()
    return join(cache_dir, key, rel, hashlib.sha256(mds.index_bytes(folder)).hexdigest()[:16])


class CheckedDataset(StreamingDataset):
    """A `StreamingDataset` whose epoch never ends early: a shard that fails to load (a hash
    mismatch under `validate_hash`, a missing file) raises in the iterating thread, naming the
    shard in OUT. Streaming 0.13 prepares shards in background threads, and when one fails it only
    prints the traceback and ends the epoch at that point. The shard's cached files are removed, so
    a rerun copies it again. Shared memory that a reader of the same cache folders killed with
    SIGKILL left behind is released first (`shards.stale_shm`), so the rerun is not refused."""

    _failure: Exception | None = None

    def __init__(self, *args, streams: list[Stream] | None = None, **kwargs):
        if streams:
            released = stale_shm.release_stale([os.path.abspath(os.path.join(s.local, s.split)) for s in streams])
            if released:
                log.warning("released shared memory left by a killed reader of %s: /dev/shm/%s",
                            streams[0].local, ", ".join(released))
        super().__init__(*args, streams=streams, **kwargs)

    def prepare_shard(self, shard_id: int, blocking: bool = True) -> None:
        try:
            super().prepare_shard(shard_id, blocking)
        except Exception as e:
            stream = self.streams[self.stream_per_shard[shard_id]]
            pairs = self.shards[shard_id].file_pairs
            for info in (i for pair in pairs for i in pair if i is not None):  # copied again on a rerun
                Path(stream.local, info.basename).unlink(missing_ok=True)
            files = ", ".join(join(stream.remote or stream.local, (z or r).basename) for r, z in pairs)
            self._failure = ValueError(f"{files}: could not be read into the cache {stream.local} ({e}); "
                                       "check it with `python -m shards verify`")
            raise self._failure from e

    def __iter__(self):
        yield from super().__iter__()
        if self._failure is not None:
            raise self._failure


def mixture_file(root: str, mixture: str) -> str:
    """`stage1` → `OUT/mixtures/stage1.json`; anything with a `.json` suffix is a file path."""
    return mixture if str(mixture).endswith(".json") else join(root, MIXTURES, f"{mixture}.json")


def read_mixture(root: str, mixture: str) -> list[dict]:
    path = mixture_file(root, mixture)
    try:
        with fsspec.open(path, "r") as f:
            return mixture_math.read(f.read(), where=path)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"mixture {mixture!r} not found at {path}: run the pipeline's `mix` step, "
            "or pass the path of a mixture .json file"
        ) from None


def _stream(root: str, rel: str, cache_dir: str | None, proportion: float | None, where: str) -> Stream:
    """`where`: the file `rel` was read from."""
    folder = join_within(root, rel, where)
    return Stream(remote=folder, local=cache_folder(root, rel, folder, cache_dir), proportion=proportion)


def mixture_streams(root: str, mixture: str = "stage1", cache_dir: str | None = None) -> list[Stream]:
    """One Stream per bucket of the mixture, with its document proportion; `cache_dir`: see the
    module docstring (default `default_cache_dir()`)."""
    return [
        _stream(root, item["path"], cache_dir, float(item["proportion"]), mixture_file(root, mixture))
        for item in read_mixture(root, mixture)
    ]


def validation_streams(root: str, cache_dir: str | None = None) -> list[Stream]:
    """The held-out split recorded in the manifest (never part of a training mixture)."""
    val = manifest_io.read(root)["validation"]
    if not val["documents"]:
        raise ValueError(f"{root}: the validation split is empty; rerun `tokenize` with a larger --val-fraction")
    return [_stream(root, val["path"], cache_dir, None, join(root, MANIFEST))]
