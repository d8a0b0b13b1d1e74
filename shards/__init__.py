"""The dataset contract: what a pipeline output looks like and how any trainer reads it.

Nothing here imports Datatrove: consumers of the shards need only this package, `streaming`,
`tokenizers` and torch. Read in this order: `layout` (folders, buckets), `manifest`, `mixture`,
`streams` (mixture → streaming.Stream), `windows` → `packing` → `masking` (shared with the
trainer), `api` (open_dataset + collators for any PyTorch trainer), `convert` (other frameworks'
layouts), `card` (Hugging Face dataset card), `verify`.
"""
