"""The GLUE task table: where each task's data lives, its text columns (`run_glue.py`'s names), its
labels and its official metric(s); and the order `all` runs tasks in (a task after the one it starts from).

SNLI is not a GLUE task; it is here because the published protocol starts MNLI from an SNLI fine-tune.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    name: str
    hub: tuple[str, str | None]  # datasets.load_dataset(path, name)
    columns: tuple[str, str | None]  # the text column(s); the label column is always "label"
    num_labels: int  # 1: regression
    metrics: tuple[str, ...]  # names in training.glue.metrics.METRICS; the score is their mean
    validation: str = "validation"  # the split scored

    @property
    def regression(self) -> bool:
        return self.num_labels == 1


def _glue(name: str, columns: tuple[str, str | None], num_labels: int, metrics: tuple[str, ...],
          validation: str = "validation") -> Task:
    return Task(name, ("nyu-mll/glue", name), columns, num_labels, metrics, validation)


TASKS = {t.name: t for t in (
    _glue("cola", ("sentence", None), 2, ("mcc",)),
    _glue("sst2", ("sentence", None), 2, ("accuracy",)),
    _glue("mrpc", ("sentence1", "sentence2"), 2, ("f1", "accuracy")),
    _glue("stsb", ("sentence1", "sentence2"), 1, ("pearson", "spearman")),
    _glue("qqp", ("question1", "question2"), 2, ("f1", "accuracy")),
    _glue("mnli", ("premise", "hypothesis"), 3, ("accuracy",), validation="validation_matched"),
    _glue("qnli", ("question", "sentence"), 2, ("accuracy",)),
    _glue("rte", ("sentence1", "sentence2"), 2, ("accuracy",)),
    _glue("wnli", ("sentence1", "sentence2"), 2, ("accuracy",)),
    Task("snli", ("stanfordnlp/snli", None), ("premise", "hypothesis"), 3, ("accuracy",)),
)}
GLUE = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")  # what `--task all` means


def get(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; use one of {sorted(TASKS)} or 'all'")
    return TASKS[name]


def run_order(names: list[str] | tuple[str, ...], starts_from: dict[str, str | None]) -> list[str]:
    """`names` with every task a task starts from (`starts_from[t]`, when it names a task) placed
    before it, added if missing; otherwise in the order given."""
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ValueError(f"init_from forms a cycle: {' -> '.join([*visiting, name])}; "
                             "point one of them at the pretrained checkpoint (init_from: null)")
        visiting.append(name)
        parent = starts_from.get(name)
        if parent in TASKS:
            visit(parent)
        visiting.pop()
        order.append(name)

    for name in names:
        visit(name)
    return order
