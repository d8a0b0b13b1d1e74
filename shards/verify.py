"""`python -m shards verify OUT`: prove the shards on disk are the ones the manifest describes.

First the small files: every index.json (each set's merged one and its tasks') and mixture file
must have the sha256 the manifest records (`files`); each task's index must list exactly the
shards the merged one takes from it; every `OUT/mixtures/*.json` must be a valid mixture (JSON,
paths inside OUT, proportions summing to 1) over buckets the manifest has, and one the manifest
names must hold its proportions. Then the shards: re-hashes every stored shard file (and its
decompressed bytes) against the hashes recorded in `index.json`, decodes every sample, and checks
per bucket: documents, tokens and shard counts equal the manifest's; every sample is framed
`[CLS] … [SEP]`, has `num_tokens == len(input_ids)` and lies in its bucket's range. The first
failure raises `ValueError` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass

import fsspec
from streaming.base.compression import decompress

from shards import manifest as manifest_io
from shards import mds, mixture
from shards.layout import MANIFEST, MIXTURES, join, join_within


@dataclass
class Checked:
    shards: int = 0
    documents: int = 0
    tokens: int = 0


REGENERATE = "rerun the pipeline's `mix` step (or `tokenize` if shards changed)"


def verify_files(root: str, manifest: dict) -> None:
    """Each small file the manifest records has its sha256."""
    where = join(root, MANIFEST)
    for rel, expected in manifest.get("files", {}).items():
        path = join_within(root, rel, where)
        try:
            got = manifest_io.file_sha256(path)
        except FileNotFoundError:
            raise ValueError(f"{path}: missing, but {where} records it; {REGENERATE}") from None
        if got != expected:
            raise ValueError(f"{path}: sha256 {got[:12]}…, {where} records {expected[:12]}… (the file changed "
                             f"after the manifest was written); {REGENERATE}")


def verify_task_indexes(folder: str, index: dict) -> None:
    """The merged index takes from each task folder exactly the shards that task's index lists."""
    taken: dict[str, list[dict]] = {}
    for shard in index["shards"]:
        task, sep, _ = mds.stored_file(shard)["basename"].partition("/")
        if sep:
            taken.setdefault(task, []).append(shard)
    for task, merged in taken.items():
        sub = join_within(folder, task, join(folder, mds.INDEX))
        own = mds.read_index(sub)["shards"]
        prefixed = [{**s, **{k: {**s[k], "basename": f"{task}/{s[k]['basename']}"} for k in ("raw_data", "zip_data")
                             if s.get(k)}} for s in own]
        if prefixed != merged:
            raise ValueError(f"{join(sub, mds.INDEX)}: lists {len(own)} shard(s) that differ from the "
                             f"{len(merged)} {join(folder, mds.INDEX)} takes from it; rerun `tokenize` (it "
                             "rebuilds the merged index)")


def verify_mixtures(root: str, manifest: dict) -> None:
    """Every mixture file under OUT/mixtures/ and every one the manifest names."""
    where = join(root, MANIFEST)
    recorded = {join_within(root, mix["path"], where): name
                for name, mix in manifest.get("mixtures", {}).items() if "path" in mix}
    fs, path = fsspec.core.url_to_fs(join(root, MIXTURES))
    on_disk = [join(root, MIXTURES, p.rstrip("/").split("/")[-1]) for p in fs.glob(f"{path}/*.json")]
    buckets = {b["path"]: name for name, b in manifest["buckets"].items()}
    for file in sorted(set(on_disk) | set(recorded)):
        try:
            with fsspec.open(file, "r") as f:
                items = mixture.read(f.read(), where=file)
        except FileNotFoundError:
            raise ValueError(f"{file}: missing, but {where} names it; {REGENERATE}") from None
        for item in items:
            join_within(root, item["path"], file)
            if item["path"] not in buckets:
                raise ValueError(f"{file}: bucket path {item['path']!r} is not a bucket of {where} "
                                 f"({sorted(buckets)}); {REGENERATE}")
        if file in recorded:
            want = manifest["mixtures"][recorded[file]]["proportions"]
            got = {buckets[i["path"]]: i["proportion"] for i in items}
            if got != want:
                raise ValueError(f"{file}: proportions {got}, {where} records {want}; {REGENERATE}")


def verify_section(root: str, name: str, section: dict, special: dict, lo: int = 0, hi: int | None = None) -> Checked:
    folder = join_within(root, section["path"], join(root, MANIFEST))
    index = mds.read_index(folder)
    verify_task_indexes(folder, index)
    got = Checked()
    for shard in index["shards"]:
        stored_info = mds.stored_file(shard)
        where = join_within(folder, stored_info["basename"], join(folder, mds.INDEX))
        stored = mds.read_shard(folder, shard)
        mds.check_hashes(where, stored, stored_info)
        if shard.get("zip_data"):
            mds.check_hashes(f"{where} (decompressed)", decompress(shard["compression"], stored), shard["raw_data"])
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
    """Check the small files, then every bucket, the validation split and any materialized
    mixture; return what was checked per set."""
    manifest = manifest_io.read(root)
    special = manifest["tokenizer"]["special_tokens"]
    verify_files(root, manifest)
    verify_mixtures(root, manifest)
    result = {}
    for name, section in manifest_io.sections(manifest).items():
        lo, hi = (section["min_tokens"], section["max_tokens"]) if name in manifest["buckets"] else (0, None)
        result[name] = verify_section(root, name, section, special, lo, hi)
    return result
