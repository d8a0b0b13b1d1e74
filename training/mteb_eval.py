"""`python -m training mteb MODEL --tasks A,B | --benchmark NAME`: score a sentence-transformers
model (`python -m training embed`'s output, or any) with `mteb`, the published evaluation code.

Results are mteb's own JSON files under OUTPUT (`OUTPUT/results/<model>/<revision>/<task>.json`),
so mteb's tools and leaderboard read them; a task already scored there is not run again. Tasks
download their datasets from the Hub the first time (mteb's cache, `HF_HOME`). Tested with
mteb 2.26 and sentence-transformers 5.7 (the `[eval]` extra).
"""

from __future__ import annotations

from pathlib import Path

from shards.manifest import file_sha256
from training.embed import install_hint


def _mteb():
    try:
        import mteb
    except ImportError:
        raise ImportError(install_hint("mteb")) from None
    return mteb


def tasks_named(names: list[str] | None = None, benchmark: str | None = None) -> list:
    """mteb's task objects for `names` (or a benchmark's); unknown names are refused, listed."""
    mteb = _mteb()
    if benchmark:
        try:
            return list(mteb.get_benchmark(benchmark).tasks)
        except (KeyError, ValueError) as e:
            raise ValueError(f"--benchmark {benchmark!r}: {e}") from None
    if not names:
        raise ValueError("name tasks with --tasks A,B (e.g. STSBenchmark,Banking77Classification) or --benchmark NAME")
    try:
        found = list(mteb.get_tasks(tasks=names))
    except KeyError as e:
        found, missing = [], str(e)
    else:
        missing = [n for n in names if n not in {t.metadata.name for t in found}]
    if missing:
        raise ValueError(f"unknown mteb tasks: {missing}; list them with `python -c \"import mteb; "
                         "print([t.metadata.name for t in mteb.get_tasks()])\"`")
    return found


def run(model_path: str | Path, tasks: list, output: str | Path, batch_size: int = 32,
        device: str | None = None, name: str | None = None) -> dict[str, float]:
    """Score the model on `tasks` (mteb task objects); returns each task's main score. Results are
    filed under `name` (default the folder's name) and a revision naming the weights (the sha256
    of `model.safetensors`, 12 hex), so re-embedding a newer checkpoint into the same folder is
    scored again rather than read back."""
    mteb = _mteb()
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path), trust_remote_code=True, device=device)
    path = Path(model_path)
    if path.is_dir():
        model.model_card_data.model_name = name or path.resolve().name
        weights = path / "model.safetensors"
        if weights.is_file():
            model.model_card_data.base_model_revision = file_sha256(str(weights))[:12]
    result = mteb.evaluate(model, tasks, cache=mteb.ResultCache(cache_path=Path(output)),
                           encode_kwargs={"batch_size": batch_size})
    return {r.task_name: r.get_score() for r in result.task_results}


def table(scores: dict[str, float]) -> str:
    width = max(len("task"), *map(len, scores))
    rows = [f"{'task':<{width}}  main score", f"{'-' * width}  ----------"]
    return "\n".join(rows + [f"{name:<{width}}  {score:.4f}" for name, score in scores.items()])
