"""MDS conventions of a pipeline output: columns, per-task sub-folders, and the merged index.

Each writer task writes `<bucket>/<task:05d>/` with its own `index.json`; the merged
`<bucket>/index.json` lists the shards of the given tasks only, with basenames relative to the
bucket folder, so stock `streaming.StreamingDataset(local=<bucket>)` reads the whole bucket.
Invariant: a task folder not passed to `merge` (an unfinished task) is never referenced.
"""

from __future__ import annotations

import json

import fsspec

from shards import atomic
from shards.layout import join, join_within

INDEX = "index.json"
HASHES = ["sha1", "xxh64"]  # sorted, as streaming requires; verify re-computes every one
COMPRESSION = "zstd"
TOKEN_DTYPES = ("uint16", "uint32")  # what `pipelines.tokenizer` stores ids as


def columns(dtype: str) -> dict[str, str]:
    return {"input_ids": f"ndarray:{dtype}", "id": "str", "num_tokens": "int"}


def check_columns(folder: str, shard: dict) -> None:
    """Refuse a shard whose columns are not exactly the ones our writer produces: other MDS encodings
    (`pkl`, `json` objects, …) run or build arbitrary objects while decoding, before any check."""
    declared = dict(zip(shard.get("column_names", []), shard.get("column_encodings", [])))
    if declared not in [columns(dtype) for dtype in TOKEN_DTYPES]:
        raise ValueError(f"{join(folder, INDEX)}: shard {stored_file(shard)['basename']} declares columns {declared}, "
                         f"not {columns('uint16')} (or uint32 ids) as this pipeline writes; refusing to decode it. "
                         "This index.json was not written by this pipeline (or was edited): regenerate the output")


def task_folder(folder: str, task: int) -> str:
    return join(folder, f"{task:05d}")


def index_bytes(folder: str) -> bytes:
    """`folder/index.json` as stored (hash these)."""
    path = join(folder, INDEX)
    try:
        with fsspec.open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found: rerun the pipeline's `tokenize` step") from None


def read_index(folder: str) -> dict:
    try:
        index = json.loads(index_bytes(folder))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{join(folder, INDEX)}: not valid JSON ({e}); it was damaged or edited: "
                         "rerun `tokenize` for this output") from None
    if not isinstance(index, dict) or not isinstance(index.get("shards"), list):
        raise ValueError(f"{join(folder, INDEX)}: not an MDS index (no 'shards' list); rerun `tokenize`")
    return index


def task_folders(folder: str) -> list[str]:
    """The names of the per-task sub-folders of a bucket that hold an index (`00000`, …), sorted."""
    fs, path = fsspec.core.url_to_fs(folder)
    found = fs.glob(f"{path.rstrip('/')}/*/{INDEX}")
    return sorted(name for name in (p.rstrip("/").split("/")[-2] for p in found) if name.isdigit())


def write_index(folder: str, index: dict) -> None:
    atomic.write_text(join(folder, INDEX), json.dumps(index))


def merge(folder: str, tasks: list[int]) -> dict:
    """Write `folder/index.json` listing the shards of exactly `tasks`, in task order."""
    shards = []
    for task in sorted(tasks):
        sub = f"{task:05d}"
        for shard in read_index(join(folder, sub))["shards"]:
            shard = json.loads(json.dumps(shard))
            for key in ("raw_data", "zip_data"):
                if shard.get(key):
                    shard[key]["basename"] = f"{sub}/{shard[key]['basename']}"
            shards.append(shard)
    index = {"version": 2, "shards": shards}
    write_index(folder, index)
    return index


def stored_file(shard: dict) -> dict:
    """The file a shard is stored as (compressed if it is), with its `basename`, `bytes`, `hashes`."""
    return shard.get("zip_data") or shard["raw_data"]


def summary(index: dict) -> tuple[int, int]:
    """(documents, shards) of an index."""
    return sum(s["samples"] for s in index["shards"]), len(index["shards"])


def read_shard(folder: str, shard: dict) -> bytes:
    """The shard's stored bytes, as on disk (hash these)."""
    with fsspec.open(join_within(folder, stored_file(shard)["basename"], join(folder, INDEX)), "rb") as f:
        return f.read()


def check_hashes(where: str, data: bytes, info: dict, algos: list[str] | None = None) -> None:
    """`data` (a shard file's bytes) against its index entry `info`: size, then each hash in `algos`
    (default: every one recorded). Raises ValueError naming `where`."""
    from streaming.base.hashing import get_hash

    if len(data) != info["bytes"]:
        raise ValueError(f"{where}: {len(data)} bytes, index.json says {info['bytes']}; the shard is truncated or "
                         "replaced: rerun `tokenize` for this output")
    recorded = info.get("hashes", {})
    for algo in recorded if algos is None else algos:
        if algo not in recorded:
            raise ValueError(f"{where}: index.json records no {algo} hash (it has {sorted(recorded)}); "
                             "choose one of those")
        if get_hash(algo, data) != recorded[algo]:
            raise ValueError(f"{where}: {algo} mismatch (the file changed after it was written); rerun `tokenize`")


def iter_samples(folder: str, shard: dict, stored: bytes, indices=None):
    """Decode the samples of one shard (all, or those at sorted `indices`) from its stored bytes
    (decompressing if needed); only our columns."""
    import numpy as np
    from streaming.base.compression import decompress
    from streaming.base.format.mds.reader import MDSReader

    check_columns(folder, shard)
    raw = decompress(shard.get("compression"), stored) if shard.get("zip_data") else stored
    reader = MDSReader.from_json(folder, None, shard)
    n = int(np.frombuffer(raw, np.uint32, 1)[0])
    offsets = np.frombuffer(raw, np.uint32, n + 1, offset=4)
    for i in range(n) if indices is None else indices:
        yield reader.decode_sample(raw[offsets[i]:offsets[i + 1]])
