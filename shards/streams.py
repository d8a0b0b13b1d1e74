"""Turn a mixture (by name or file) into `streaming.Stream` objects any StreamingDataset takes."""

from __future__ import annotations

import fsspec
from streaming import Stream

from shards import mixture as mixture_math
from shards import manifest as manifest_io
from shards.layout import MANIFEST, MIXTURES, join, join_within


def _is_remote(path: str) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


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
    if _is_remote(root):
        if cache_dir is None:
            raise ValueError(f"{root} is remote: pass a local cache_dir to stream it into")
        return Stream(remote=folder, local=join(cache_dir, rel), proportion=proportion)
    return Stream(local=folder, proportion=proportion)


def mixture_streams(root: str, mixture: str = "stage1", cache_dir: str | None = None) -> list[Stream]:
    """One Stream per bucket of the mixture, with its document proportion."""
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
