"""The dataset contract: what a pipeline output looks like and how any trainer reads it.

Nothing here imports Datatrove: consumers of the shards need only this package, `streaming` and
`tokenizers`.
"""
