"""Reading RefinedWeb parquet into Datatrove documents, and the flat schema every parquet we write uses.

Invariants: a document's id is a stable hash of its url and content bytes (the same document gets
the same id on every machine and rerun); a row whose content is null, empty, whitespace-only or not
valid UTF-8 (or whose url is missing) still becomes a document (empty text, `metadata["bad_input"]` says why) so that
`ContentGuard` drops, counts and keeps it for audit instead of the reader losing it silently; a file
that is not a readable RefinedWeb parquet stops the job with one line naming it.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa
from datatrove.pipeline.readers import ParquetReader

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


class RefinedWebReader(ParquetReader):
    """ParquetReader for the RefinedWeb schema (`content`, `url`, `timestamp`, `dump`, `segment`)."""

    name = "📒 RefinedWeb parquet"

    def __init__(self, data_folder: str, glob_pattern: str = "**/*.parquet", batch_size: int = 1000, **kwargs):
        super().__init__(data_folder, glob_pattern=glob_pattern, batch_size=batch_size, **kwargs)

    def check_schema(self, filepath: str, schema: pa.Schema) -> None:
        where = self.data_folder.resolve_paths(filepath)
        if TEXT_COLUMN not in schema.names:
            raise ValueError(
                f"{where}: no '{TEXT_COLUMN}' column (columns: {schema.names}); "
                "this is not a RefinedWeb file: remove it from the input"
            )
        kind = schema.field(TEXT_COLUMN).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)
                or pa.types.is_large_binary(kind)):
            raise ValueError(f"{where}: column '{TEXT_COLUMN}' has type {kind}, expected string; remove the file")

    def read_file(self, filepath: str):
        import pyarrow.parquet as pq

        where = self.data_folder.resolve_paths(filepath)
        with self.data_folder.open(filepath, "rb") as f:
            try:
                pqf = pq.ParquetFile(f)
            except (pa.ArrowInvalid, OSError) as e:
                raise ValueError(f"{where}: not a readable parquet file ({e}); delete it and rerun `download`") from None
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
                except (pa.ArrowInvalid, OSError) as e:
                    raise ValueError(
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
