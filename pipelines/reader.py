"""Reading RefinedWeb parquet into Datatrove documents, and the flat schema every parquet we write uses.

Invariants: a document's id is a stable hash of its url and content bytes (the same document gets
the same id on every machine and rerun); a row whose content is null, empty, whitespace-only or not
valid UTF-8 (or whose url is missing) still becomes a document (empty text, `metadata["bad_input"]` says why) so that
`ContentGuard` drops, counts and keeps it for audit instead of the reader losing it silently; a file
that is not a readable RefinedWeb parquet (a nested-type column included) stops the job with one line
naming it, or with `--on-bad-file skip` is skipped, counted (`bad_files`) and recorded in
`OUT/removed/bad_files/<rank>.json` (documents read from it before corrupt data are kept).
"""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa
from datatrove.pipeline.readers import ParquetReader

from shards import atomic
from shards.layout import join

TEXT_COLUMN = "content"
META_COLUMNS = ("url", "timestamp", "dump", "segment")

# What OUT/filtered/ and OUT/removed/<filter>/ hold: one row per document, no nested metadata.
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("url", pa.string()),
        ("timestamp", pa.string()),
        ("dump", pa.string()),
        ("segment", pa.string()),
        ("reason", pa.string()),
    ]
)


def doc_id(url: str, content: bytes) -> str:
    return hashlib.blake2b(url.encode("utf-8") + b"\0" + content, digest_size=16).hexdigest()


def flat_row(writer, document) -> dict:
    """DiskWriter adapter: a Document as one row of `SCHEMA`."""
    meta = document.metadata
    return {
        "id": document.id,
        "text": document.text,
        "url": meta.get("url"),
        "timestamp": meta.get("timestamp"),
        "dump": meta.get("dump"),
        "segment": meta.get("segment"),
        "reason": meta.get("filter_reason"),
    }


class BadFile(ValueError):
    """A source file that is not a readable RefinedWeb parquet; the message names it."""


class RefinedWebReader(ParquetReader):
    """ParquetReader for the RefinedWeb schema (`content`, `url`, `timestamp`, `dump`, `segment`).

    `on_bad_file`: `stop` raises `BadFile`; `skip` goes on, and task r writes the files it skipped to
    `quarantine/<r:05d>.json` (rewritten by every attempt of the task)."""

    name = "📒 RefinedWeb parquet"

    def __init__(self, data_folder: str, glob_pattern: str = "**/*.parquet", batch_size: int = 1000,
                 on_bad_file: str = "stop", quarantine: str | None = None, **kwargs):
        super().__init__(data_folder, glob_pattern=glob_pattern, batch_size=batch_size, **kwargs)
        assert on_bad_file == "stop" or quarantine, "on_bad_file='skip' needs a quarantine folder"
        self.on_bad_file, self.quarantine = on_bad_file, quarantine
        self.bad: list[dict] = []

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        self.bad = []
        yield from super().run(data, rank, world_size)
        if self.on_bad_file == "skip":
            atomic.write_text(join(self.quarantine, f"{rank:05d}.json"), json.dumps(self.bad, indent=2))

    def read_file(self, filepath: str):
        rows = 0
        try:
            for doc in self._read(filepath):
                yield doc
                rows += 1
        except BadFile as e:
            if self.on_bad_file != "skip":
                raise
            self.stat_update("bad_files")
            self.bad.append({"file": self.data_folder.resolve_paths(filepath), "error": str(e),
                             "documents_read": rows})

    def check_schema(self, filepath: str, schema: pa.Schema) -> None:
        where = self.data_folder.resolve_paths(filepath)
        if TEXT_COLUMN not in schema.names:
            raise BadFile(
                f"{where}: no '{TEXT_COLUMN}' column (columns: {schema.names}); "
                "this is not a RefinedWeb file: remove it from the input"
            )
        kind = schema.field(TEXT_COLUMN).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)
                or pa.types.is_large_binary(kind)):
            raise BadFile(f"{where}: column '{TEXT_COLUMN}' has type {kind}, expected string; remove the file")
        nested = [f"{c} ({schema.field(c).type})" for c in META_COLUMNS
                  if c in schema.names and pa.types.is_nested(schema.field(c).type)]
        if nested:
            raise BadFile(f"{where}: nested-type column(s) {', '.join(nested)}, expected strings; remove the file "
                          "(or rerun with --on-bad-file skip)")

    def _read(self, filepath: str):
        import pyarrow.parquet as pq

        where = self.data_folder.resolve_paths(filepath)
        with self.data_folder.open(filepath, "rb") as f:
            try:
                pqf = pq.ParquetFile(f)
            except (pa.ArrowException, OSError) as e:
                raise BadFile(f"{where}: not a readable parquet file ({e}); delete it and rerun `download`") from None
            with pqf:
                self.check_schema(filepath, pqf.schema_arrow)
                columns = [TEXT_COLUMN] + [c for c in META_COLUMNS if c in pqf.schema_arrow.names]
                row = 0
                try:
                    for batch in pqf.iter_batches(batch_size=self.batch_size, columns=columns):
                        # binary view: invalid UTF-8 must not abort the batch, only mark its row
                        content = batch.column(TEXT_COLUMN).cast(pa.binary()).to_pylist()
                        meta = {c: batch.column(c).cast(pa.string()).to_pylist() for c in columns[1:]}
                        with self.track_time("batch"):
                            docs = [self.make_document(raw, {c: meta[c][i] for c in meta}, where, row + i)
                                    for i, raw in enumerate(content)]
                        yield from docs
                        row += len(docs)
                except (pa.ArrowException, OSError) as e:
                    raise BadFile(
                        f"{where}: corrupt parquet data after row {row} ({e}); delete it and rerun `download`"
                    ) from None

    def make_document(self, raw: bytes | None, meta: dict, where: str, row: int):
        from datatrove.data import Document

        url = meta.get("url") or ""
        raw = raw or b""
        try:
            text = raw.decode("utf-8")
            bad = None if text.strip() else "empty"
            bad = bad or (None if url else "no_url")
        except UnicodeDecodeError:
            text, bad = raw.decode("utf-8", errors="replace"), "invalid_utf8"
        metadata = {k: v for k, v in meta.items() if v is not None}
        metadata["source"] = f"{where}#{row}"
        if bad:
            metadata["bad_input"] = bad
        return Document(text=text, id=doc_id(url, raw), metadata=metadata)
