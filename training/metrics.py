"""What a run reports: one JSONL line per logged step (the record the plots and the resume test
read), the same scalars in TensorBoard, and the FLOP count behind the MFU estimate."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import torch

from shards import atomic

METRICS = "metrics.jsonl"

# Dense bf16 peak per device, FLOP/s (no sparsity); MFU is reported only when the peak is known.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "B200": 2250e12}


def peak_flops(device: torch.device, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def train_flops(model_cfg, num_params: int, tokens: int, sum_len_sq: int, masked: int) -> float:
    """Forward + backward FLOPs of one step: 6·N per token for the encoder's matrices, attention
    12·layers·hidden per (query, key) pair inside each window, the decoder only on masked tokens."""
    decoder = model_cfg.hidden_size * model_cfg.vocab_size + model_cfg.vocab_size
    dense = num_params - model_cfg.vocab_size * model_cfg.hidden_size - decoder  # less the embedding table
    return 6 * dense * tokens + 12 * model_cfg.num_hidden_layers * model_cfg.hidden_size * sum_len_sq + 6 * decoder * masked


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated, or the process's peak RSS on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def banner(cfg, num_params: int, step: int, accum: int, world: int, backend: str, device: torch.device,
           parallelism: str) -> str:
    """What the trainer prints at start: the step's token and masked-token budgets, and the backend."""
    per_step = cfg.data.micro_batch_tokens * accum * world
    return "\n".join([
        f"run {cfg.run_dir}: {num_params:,} parameters, steps {step} -> {cfg.steps}",
        f"tokens per step: {per_step:,} budget ({world} rank(s) × {accum} accumulation steps × "
        f"{cfg.data.micro_batch_tokens:,}-token micro-batches; packing fills each to <= budget)",
        f"masked-token budget: ~{int(per_step * cfg.data.masking.rate):,} per step "
        f"({cfg.data.masking.rate:.0%} of non-special tokens), loss = sum over them / their global count",
        f"context {cfg.data.context_length}, long documents: {cfg.data.long_docs}, mixture {cfg.data.mixture}",
        f"backend: attention {backend}, device {device}, "
        f"{'bf16 autocast' if device.type == 'cuda' else 'float32'}, {parallelism}",
    ])


class MetricsLog:
    """Rank 0 only. On resume from step S, lines after S (from the interrupted run) are dropped,
    and so is a last line torn by a crash mid-write, so the file always reads as one uninterrupted run."""

    def __init__(self, run_dir: str | Path, tensorboard: bool, resume_step: int | None):
        self.path = Path(run_dir) / METRICS
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if resume_step is not None and self.path.exists():
            kept = [line for line, r in records(self.path) if r["step"] <= resume_step]
        atomic.write_text(str(self.path), "".join(line + "\n" for line in kept))
        self.file = self.path.open("a")
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=resume_step)

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tb is not None:
            for key, value in record.items():
                if key not in ("kind", "step") and isinstance(value, (int, float)) and value is not None:
                    self.tb.add_scalar(f"{record['kind']}/{key}", value, record["step"])

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()


def read(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / METRICS
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: point at a run folder written by `python -m training`")
    return [r for _, r in records(path)]


def records(path: Path) -> list[tuple[str, dict]]:
    """(line, record) of a metrics file; an unparseable last line (a write cut short by a crash) is
    dropped, an unparseable line before it is an error."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    out = []
    for i, line in enumerate(lines):
        try:
            out.append((line, json.loads(line)))
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:
                break
            raise ValueError(f"{path}: line {i + 1} is not JSON ({e}); the file was edited or damaged") from None
    return out
