"""`python -m shards verify OUT`: prove the shards on disk are the ones the manifest describes.

Re-hashes every stored shard file (and its decompressed bytes) against the hashes recorded in
`index.json`, decodes every sample, and checks per bucket: documents, tokens and shard counts equal
the manifest's; every sample is framed `[CLS] … [SEP]`, has `num_tokens == len(input_ids)` and lies
in its bucket's range. The first failure raises `ValueError` naming the shard.
"""

from __future__ import annotations

from dataclasses import dataclass

from streaming.base.compression import decompress
from streaming.base.hashing import get_hash

from shards import manifest as manifest_io
from shards import mds
from shards.layout import MANIFEST, join, join_within


@dataclass
class Checked:
    shards: int = 0
    documents: int = 0
    tokens: int = 0


def _check_hashes(where: str, data: bytes, info: dict) -> None:
    if len(data) != info["bytes"]:
        raise ValueError(f"{where}: {len(data)} bytes, index.json says {info['bytes']}; the shard is truncated or "
                         "replaced: rerun `tokenize` for this output")
    for algo, expected in info.get("hashes", {}).items():
        if get_hash(algo, data) != expected:
            raise ValueError(f"{where}: {algo} mismatch (the file changed after it was written); rerun `tokenize`")


def verify_section(root: str, name: str, section: dict, special: dict, lo: int = 0, hi: int | None = None) -> Checked:
    folder = join_within(root, section["path"], join(root, MANIFEST))
    index = mds.read_index(folder)
    got = Checked()
    for shard in index["shards"]:
        stored_info = mds.stored_file(shard)
        where = join_within(folder, stored_info["basename"], join(folder, mds.INDEX))
        stored = mds.read_shard(folder, shard)
        _check_hashes(where, stored, stored_info)
        if shard.get("zip_data"):
            _check_hashes(f"{where} (decompressed)", decompress(shard["compression"], stored), shard["raw_data"])
        n = 0
        for sample in mds.iter_samples(folder, shard, stored):
            ids, count = sample["input_ids"], int(sample["num_tokens"])
            if count != len(ids) or ids[0] != special["cls"] or ids[-1] != special["sep"]:
                raise ValueError(f"{where}: document {sample['id']} is not one whole [CLS] … [SEP] sequence "
                                 f"of num_tokens={count} tokens")
            if count < lo or (hi is not None and count >= hi):
                raise ValueError(f"{where}: document {sample['id']} has {count} tokens, outside bucket {name}")
            n += 1
            got.tokens += count
        if n != shard["samples"]:
            raise ValueError(f"{where}: {n} samples decoded, index.json says {shard['samples']}")
        got.documents += n
        got.shards += 1
    for key in ("documents", "tokens", "shards"):
        if key in section and getattr(got, key) != section[key]:
            raise ValueError(f"{folder}: {getattr(got, key)} {key} on disk, manifest says {section[key]}; "
                             "rerun the pipeline's `mix` step (or `tokenize` if shards are missing)")
    return got


def verify(root: str) -> dict[str, Checked]:
    """Check every bucket, the validation split and any materialized mixture; return what was checked."""
    manifest = manifest_io.read(root)
    special = manifest["tokenizer"]["special_tokens"]
    result = {}
    for name, bucket in manifest["buckets"].items():
        result[name] = verify_section(root, name, bucket, special, bucket["min_tokens"], bucket["max_tokens"])
    result["validation"] = verify_section(root, "validation", manifest["validation"], special)
    for name, mix in manifest.get("mixtures", {}).items():
        if "materialized" in mix:
            result[f"materialized/{name}"] = verify_section(root, name, mix["materialized"], special)
    return result
