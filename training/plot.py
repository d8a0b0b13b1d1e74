"""`python -m training plot RUN_DIR`: PNG plots of loss, accuracy, lr and throughput from metrics.jsonl,
plus validation pseudo-perplexity per position range when the run validated."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from training import metrics  # noqa: E402
from training.validate import RANGES  # noqa: E402

PANELS = {  # file name: (train key, validation key or None, y label)
    "loss": ("loss", "loss", "MLM loss"),
    "accuracy": ("accuracy", "accuracy", "MLM accuracy"),
    "lr": ("lr", None, "learning rate"),
    "throughput": ("tokens_per_s", None, "tokens / s"),
}


def plot(run_dir: str | Path) -> list[Path]:
    records = metrics.read(run_dir)
    train = [r for r in records if r["kind"] == "train"]
    val = [r for r in records if r["kind"] == "val"]
    out_dir = Path(run_dir) / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (key, val_key, label) in PANELS.items():
        fig, ax = plt.subplots(figsize=(7, 4))
        pts = [(r["step"], r[key]) for r in train if r.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts), label="train")
        vpts = [(r["step"], r[val_key]) for r in val if val_key and r.get(val_key) is not None]
        if vpts:
            ax.plot(*zip(*vpts), "o-", label="validation")
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if pts or vpts:
            ax.legend()
        path = out_dir / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    if val:
        fig, ax = plt.subplots(figsize=(7, 4))
        for _, _, name in RANGES:
            pts = [(r["step"], r[f"pseudo_perplexity_{name}"]) for r in val if f"pseudo_perplexity_{name}" in r]
            if pts:
                ax.plot(*zip(*pts), "o-", label=f"positions {name}")
        ax.set_xlabel("step")
        ax.set_ylabel("validation pseudo-perplexity")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
        path = out_dir / "pseudo_perplexity.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
