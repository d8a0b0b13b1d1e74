"""`python -m training plot PATH [PATH ...]`: PNG plots of loss, accuracy, lr and throughput from a
run's metrics.jsonl, its validation MLM perplexity and pseudo-perplexity per position range over
steps, and pseudo-perplexity against position for any set of scored checkpoints (`python -m
training pppl`; stage 1 against stage 2 is NeoBERT's long-context figure)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from training import metrics, pppl  # noqa: E402

PANELS = {  # file name: (train key, validation key or None, y label)
    "loss": ("loss", "loss", "MLM loss"),
    "accuracy": ("accuracy", "accuracy", "MLM accuracy"),
    "lr": ("lr", None, "learning rate"),
    "throughput": ("tokens_per_s", None, "tokens / s"),
}
PER_RANGE = {  # file name: y label; validation keys are NAME_RANGE
    "mlm_perplexity": "validation MLM perplexity (exp of the 20 %-masked loss)",
    "pseudo_perplexity": "validation pseudo-perplexity",
}
BY_POSITION = "pseudo_perplexity_by_position.png"


def plot_paths(paths: list[str | Path], out: str | Path | None = None) -> list[Path]:
    """Training plots of every run folder among `paths`, then one pseudo-perplexity-against-position
    figure of every path's `pppl` result (written to `out`, default the first result's run's plots/)."""
    written, results = [], []
    for spec in paths:
        path = Path(spec)
        is_run = (path / metrics.METRICS).is_file()
        if is_run:
            written += plot(path)
        found = pppl.find_result(path)
        if found is not None:
            results.append(found)
        elif not is_run:
            raise FileNotFoundError(f"{path}: neither a run folder (no {metrics.METRICS}) nor a scored checkpoint "
                                    f"(no {pppl.RESULTS}/*.json); score it with `python -m training pppl {path} "
                                    "--data OUT` first")
    if results:
        written.append(by_position(results, Path(out) if out else results[0].parent.parent / "plots" / BY_POSITION))
    return written


def by_position(results: list[Path], out: Path) -> Path:
    """One line per result: pseudo-perplexity of each BIN positions, range edges dotted."""
    fig, ax = plt.subplots(figsize=(7, 4))
    edges = set()
    for path in results:
        r = json.loads(path.read_text())
        pts = [((b["lo"] + b["hi"]) / 2, b["pseudo_perplexity"]) for b in r["bins"] if b["positions"]]
        if pts:
            ax.plot(*zip(*pts), ".-", label=f"{r['label']} ({r['positions_per_range']} positions/range)")
        edges |= {s["hi"] for s in r["ranges"][:-1]}
    for x in sorted(edges):
        ax.axvline(x, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel(f"position in the window ({pppl.BIN}-position bins)")
    ax.set_ylabel("pseudo-perplexity")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, out)


def plot(run_dir: str | Path) -> list[Path]:
    records = metrics.read(run_dir)
    train = [r for r in records if r["kind"] == "train"]
    val = [r for r in records if r["kind"] == "val"]
    out_dir = Path(run_dir) / "plots"
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
        written.append(_save(fig, out_dir / f"{name}.png"))
    for name, label in PER_RANGE.items():
        ranges = list(dict.fromkeys(k[len(name) + 1:] for r in val for k in r if k.startswith(f"{name}_")))
        if not ranges:
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        for span in ranges:
            pts = [(r["step"], r[f"{name}_{span}"]) for r in val if f"{name}_{span}" in r]
            ax.plot(*zip(*pts), "o-", label=f"positions {span}")
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
        written.append(_save(fig, out_dir / f"{name}.png"))
    return written


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
