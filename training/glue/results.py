"""What a GLUE run reports: RUN_DIR/results.json (per task: the best grid point's metrics, and every
point run) and RUN_DIR/results.md (the same as a table). A task run again replaces its own entry
and keeps the others', so tasks run one at a time add up to one report."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from shards.atomic import write_text
from training.glue.finetune import Outcome

JSON, TABLE = "results.json", "results.md"


def task_entry(task: str, outcomes: list[Outcome], checkpoint: str, start: str, source: str,
               sizes: dict[str, int]) -> dict:
    best = max(outcomes, key=lambda o: o.metrics["score"])
    return {"metrics": {k: v for k, v in best.metrics.items() if k != "score"}, "score": best.metrics["score"],
            "point": asdict(best.point), "step": best.step, "checkpoint": checkpoint, "init_from": start,
            "data": source, "examples": sizes,
            "grid": [{"point": asdict(o.point), **o.metrics, "step": o.step, "steps": o.steps,
                      "stopped_early": o.stopped_early} for o in outcomes]}


def write(run_dir: str | Path, task: str, entry: dict) -> tuple[Path, Path]:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / JSON
    results = json.loads(path.read_text()) if path.is_file() else {}
    results[task] = entry
    write_text(str(path), json.dumps(results, indent=2) + "\n")
    write_text(str(run_dir / TABLE), table(results))
    return path, run_dir / TABLE


def table(results: dict) -> str:
    lines = ["| task | metric(s) | score | batch size | lr | weight decay | step | points |",
             "|---|---|---|---|---|---|---|---|"]
    for task, r in results.items():
        shown = ", ".join(f"{k} {v * 100:.2f}" for k, v in r["metrics"].items())
        p = r["point"]
        lines.append(f"| {task} | {shown} | {r['score'] * 100:.2f} | {p['batch_size']} | {p['lr']:g} | "
                     f"{p['weight_decay']:g} | {r['step']} | {len(r['grid'])} |")
    return "\n".join(lines) + "\n"
