"""`download`: mirror source parquet files (any fsspec URL) into `OUT/raw/`.

Invariant: a file under `OUT/raw/` with its final name is complete. Copies go to a temporary
name and are renamed at the end, so a killed task never leaves a file that looks whole; a file
already there with the source's size is skipped, so a rerun only fetches what is missing.
"""

from __future__ import annotations

import posixpath
import time

import fsspec
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger
from tqdm import tqdm

CHUNK = 8 << 20


def list_source_files(source: str, glob: str, limit_files: int = -1) -> list[str]:
    """Relative paths of the source files, sorted so every task sees the same list."""
    fs, root = fsspec.core.url_to_fs(source)
    root = root.rstrip("/")
    files = sorted(posixpath.relpath(p, root) for p in fs.glob(posixpath.join(root, glob)) if fs.isfile(p))
    if not files:
        raise ValueError(f"no files matching {glob!r} under {source}; check --input and --glob")
    return files[:limit_files] if limit_files > 0 else files


def with_retries(what: str, fn, attempts: int = 5, base_delay: float = 1.0):
    """Call `fn`, retrying transient (OS/network) errors with exponential backoff."""
    for attempt in range(attempts):
        try:
            return fn()
        except (OSError, TimeoutError, ConnectionError) as e:
            if isinstance(e, (FileNotFoundError, PermissionError)) or attempt == attempts - 1:
                raise
            delay = base_delay * 2**attempt
            logger.warning(f"{what}: {e!r}; retry {attempt + 1}/{attempts - 1} in {delay:.0f}s")
            time.sleep(delay)


class MirrorFiles(PipelineStep):
    """Copy this task's share of the source files (`files[rank::world_size]`) to `dest`."""

    name = "⬇️ mirror"
    type = "📥 - DOWNLOAD"

    def __init__(self, source: str, dest: str, glob: str, limit_files: int):
        super().__init__()
        self.source, self.dest, self.glob, self.limit_files = source, dest, glob, limit_files

    def copy(self, rel: str) -> None:
        src_fs, src_root = fsspec.core.url_to_fs(self.source)
        dst_fs, dst_root = fsspec.core.url_to_fs(self.dest)
        src, dst = posixpath.join(src_root.rstrip("/"), rel), posixpath.join(dst_root, rel)
        size = with_retries(src, lambda: src_fs.size(src))
        if dst_fs.exists(dst) and dst_fs.size(dst) == size:
            self.stat_update("files_skipped")
            return
        tmp = f"{dst}.partial"
        dst_fs.makedirs(posixpath.dirname(dst), exist_ok=True)

        def fetch():
            with src_fs.open(src, "rb") as fin, dst_fs.open(tmp, "wb") as fout:
                while chunk := fin.read(CHUNK):
                    fout.write(chunk)

        with_retries(src, fetch)
        if dst_fs.size(tmp) != size:
            raise OSError(f"{src}: copied {dst_fs.size(tmp)} bytes, expected {size}; rerun `download`")
        dst_fs.mv(tmp, dst)
        self.stat_update("files_copied")
        self.stat_update("bytes", value=size)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        files = list_source_files(self.source, self.glob, self.limit_files)[rank::world_size]
        for rel in tqdm(files, desc=f"download (task {rank})", unit="file", disable=not files):
            with self.track_time():
                self.copy(rel)
        yield from ()
