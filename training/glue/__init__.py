"""GLUE fine-tuning and evaluation of a NeoBERT checkpoint (`python -m training glue`).

Read `run.py` first (tasks → grid points → fine-tunes → results), then `finetune.py` (one fine-tune),
`tasks.py` (the task table), `data.py`, `model.py`, `grid.py`, `metrics.py`, `results.py`.
"""
