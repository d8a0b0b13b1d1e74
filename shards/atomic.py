"""Whole-file writes of small files (settings, manifest, mixtures, indexes, conversion records).

Invariant: a reader sees the previous content or the new one, never part of a file. On a local
disk the text goes to a temporary name beside the file, is flushed to disk, then renamed over it
(atomic on POSIX); object stores (s3://, …) publish an object only once it is whole.
"""

from __future__ import annotations

import os

import fsspec
from fsspec.implementations.local import LocalFileSystem


def write_text(path: str, text: str) -> str:
    """Write `text` to `path` (a local path or URL) all at once; creates the parent folder."""
    fs, fs_path = fsspec.core.url_to_fs(path)
    fs.makedirs(fs._parent(fs_path), exist_ok=True)
    if not isinstance(fs, LocalFileSystem):
        with fs.open(fs_path, "w", encoding="utf-8") as f:
            f.write(text)
        return path
    tmp = f"{fs_path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, fs_path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
