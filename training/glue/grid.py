"""The published hyper-parameter grid and the one point a run takes without `--grid`.

`--grid` (no value) runs every point of the `grid:` section, `--grid bs=16,lr=2e-5,wd=0.01` one point
(keys left out keep the YAML's `point:` values), and no `--grid` the YAML's `point:` alone, so a
first run is one fine-tune, not sixty.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields, replace

KEYS = {"bs": "batch_size", "lr": "lr", "wd": "weight_decay"}  # --grid spelling -> field


@dataclass(frozen=True)
class Point:
    batch_size: int = 32
    lr: float = 2e-5
    weight_decay: float = 0.01

    def __post_init__(self):
        object.__setattr__(self, "lr", float(self.lr))
        object.__setattr__(self, "weight_decay", float(self.weight_decay))
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"point.batch_size must be a positive integer, got {self.batch_size!r}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError(f"point needs lr > 0 and weight_decay >= 0, got lr={self.lr}, wd={self.weight_decay}")

    def label(self) -> str:
        return f"bs={self.batch_size},lr={self.lr:g},wd={self.weight_decay:g}"


@dataclass
class Grid:
    """NeoBERT's GLUE launcher: 5 batch sizes × 6 learning rates × 2 weight decays."""

    batch_size: tuple[int, ...] = (2, 4, 8, 16, 32)
    lr: tuple[float, ...] = (5e-6, 6e-6, 8e-6, 1e-5, 2e-5, 3e-5)
    weight_decay: tuple[float, ...] = (0.01, 1e-5)

    def __post_init__(self):
        for f in fields(self):
            values = getattr(self, f.name)
            if not isinstance(values, (list, tuple)) or not values:
                raise ValueError(f"grid.{f.name} must be a non-empty list, got {values!r}")
        self.batch_size = tuple(int(v) for v in self.batch_size)
        self.lr, self.weight_decay = (tuple(float(v) for v in vs) for vs in (self.lr, self.weight_decay))

    def points(self) -> list[Point]:
        return [Point(bs, lr, wd) for bs, lr, wd in itertools.product(self.batch_size, self.lr, self.weight_decay)]


def parse_point(spec: str, default: Point) -> Point:
    """`bs=16,lr=2e-5,wd=0.01` (any subset of the keys) over `default`."""
    values = {}
    for item in spec.split(","):
        key, sep, raw = item.partition("=")
        if not sep or key.strip() not in KEYS:
            raise ValueError(f"--grid {spec!r}: expected comma-separated bs=N, lr=X, wd=X (e.g. "
                             f"bs=16,lr=2e-5,wd=0.01), got {item!r}")
        try:
            values[KEYS[key.strip()]] = int(raw) if key.strip() == "bs" else float(raw)
        except ValueError:
            raise ValueError(f"--grid {spec!r}: {key}={raw!r} is not a number") from None
    return replace(default, **values)


def select(spec: str | None, grid: Grid, default: Point) -> list[Point]:
    """The points to run: `default` (spec None), the whole grid (spec "all"), or one parsed point."""
    if spec is None:
        return [default]
    if spec == "all":
        return grid.points()
    return [parse_point(spec, default)]
