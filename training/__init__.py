"""Streaming NeoBERT trainer: MDS shards → packed, document-masked MLM → checkpoints.

Read in data-flow order: `data.py` (StreamingDataset → shards.windows → shards.packing → shards.masking,
and the loader state), `loop.py` (the trainer), `checkpoint.py`, `schedule.py`, `validate.py`,
`config.py`. `python -m training --help` lists the commands (train, export, plot).
"""
