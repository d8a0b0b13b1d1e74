"""`python -m training glue CHECKPOINT --task NAME|all`: for each task (in dependency order), the
chosen grid points fine-tuned from the task's start, the best point's weights kept as
RUN_DIR/TASK/best/, the results written after each task, and a summary table at the end."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import torch
import yaml

from training.glue import config as glue_config
from training.glue import data, model, results, tasks
from training.glue.finetune import finetune
from training.glue.grid import Point, select

log = logging.getLogger("training")
BEST = "best"


def start_of(cfg: glue_config.GlueConfig, checkpoint: str) -> str:
    """Where a task's fine-tunes start: CHECKPOINT, another task's best fine-tune, or a path."""
    if cfg.init_from is None:
        return checkpoint
    if cfg.init_from not in tasks.TASKS:
        return cfg.init_from
    best = Path(cfg.run_dir) / cfg.init_from / BEST
    if not best.is_dir():
        raise FileNotFoundError(f"{cfg.task} starts from the best {cfg.init_from} fine-tune ({best}), which does not "
                                f"exist yet: run --task {cfg.init_from} first (or --task all), or start from "
                                "CHECKPOINT with --set init_from=null")
    return str(best)


def run(checkpoint: str, task: str, train_file: str | None = None, validation_file: str | None = None,
        grid: str | None = None, overrides: list[str] = (), config_file: str | None = None) -> dict:
    """Run and report; returns {task: results entry}."""
    if task == "all" and (train_file or validation_file or config_file):
        raise ValueError("--train-file/--validation-file/--config name one task's data or settings: use them "
                         "with --task NAME, not all")
    if task == "all":  # every GLUE task, each after the fine-tune it starts from (SNLI added for MNLI)
        cfgs = {n: glue_config.load(n, overrides) for n in tasks.TASKS}
        order = tasks.run_order(tasks.GLUE, {n: c.init_from for n, c in cfgs.items()})
    else:  # one task; one that starts from another's fine-tune needs it done already (start_of says so)
        cfgs = {task: glue_config.load(tasks.get(task).name, overrides, config_file)}
        order = [task]
    points = {n: select(grid, cfgs[n].grid, cfgs[n].point) for n in order}  # bad --grid fails before any work
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    pretrained = model.load_weights(checkpoint)
    encoder = model.encoder_for(checkpoint, pretrained[2], cfgs[order[0]].tokenizer)
    log.info(f"GLUE on {checkpoint}: tasks {', '.join(order)}; device {device}")
    report = {}
    for name in order:
        report[name] = run_task(cfgs[name], checkpoint, pretrained, encoder, device, points[name], train_file,
                                validation_file)
    log.info("GLUE results (validation):\n" + results.table(report))
    return report


def run_task(cfg: glue_config.GlueConfig, checkpoint: str, pretrained, encoder: data.Encoder, device: torch.device,
             points: list[Point], train_file: str | None, validation_file: str | None) -> dict:
    task = tasks.get(cfg.task)
    start = start_of(cfg, checkpoint)
    config, tensors, _ = pretrained if start == checkpoint else model.load_weights(start)
    if cfg.max_length > config.max_length:
        raise ValueError(f"max_length {cfg.max_length} exceeds the max_length {config.max_length} of {start}: "
                         f"--set max_length={config.max_length}")
    src = data.source(task, train_file, validation_file)
    train_split, val_split = data.load_splits(src)
    where = src.describe()
    train = data.examples(train_split, task, encoder, cfg.max_length, f"{where} [train]")
    val = data.examples(val_split, task, encoder, cfg.max_length, f"{where} [{src.validation}]")
    task_dir = Path(cfg.run_dir) / task.name
    task_dir.mkdir(parents=True, exist_ok=True)
    (task_dir / "config.yaml").write_text(yaml.safe_dump(_plain(cfg), sort_keys=False))
    log.info(f"{task.name}: {len(train):,} train / {len(val):,} validation examples from {where}; start {start}; "
             f"{len(points)} grid point(s); metric(s) {', '.join(task.metrics)}")
    outcomes = []
    for i, point in enumerate(points, 1):
        torch.manual_seed(cfg.seed)  # the same head init and dropout for every point
        clf = model.build(config, tensors, task, cfg.classifier_dropout, cfg.attention_backend, start).to(device)
        outcome = finetune(clf, train, val, task, cfg, point, device, encoder.pad,
                           f"{task.name} [{i}/{len(points)}] {point.label()}")
        if not outcomes or outcome.metrics["score"] > max(o.metrics["score"] for o in outcomes):
            clf.load_state_dict(outcome.state)
            model.save(clf, task_dir / BEST, task, cfg.classifier_dropout)
        outcome.state = None  # only the best of the grid is kept, on disk
        outcomes.append(outcome)
        log.info(f"{task.name} [{i}/{len(points)}] {point.label()}: best score {outcome.metrics['score']:.4f} at step "
                 f"{outcome.step} of {outcome.steps}")
        del clf
    entry = results.task_entry(task.name, outcomes, checkpoint, start, where, {"train": len(train), "validation": len(val)})
    json_path, md_path = results.write(cfg.run_dir, task.name, entry)
    log.info(f"{task.name}: score {entry['score']:.4f} with {entry['point']} -> {json_path}, {md_path}, {task_dir / BEST}")
    return entry


def _plain(cfg: glue_config.GlueConfig) -> dict:
    return json.loads(json.dumps(asdict(cfg)))  # tuples as lists, for YAML
