"""The trainer: set up (distributed, model, data, resume), then a thin loop of steps.

One step = `accumulation_steps` packed micro-batches per rank. The loss is the sum of
cross-entropies over every masked token of the step, on every rank, divided by the global
count of masked tokens (all-reduced before the backward passes) — never a mean of per-batch or
per-rank means. Checks run before `optimizer.step()`: a NaN/inf loss or gradient skips the step.
SIGTERM/SIGINT end the run after the current step, with a checkpoint (`training/preemption.py`).
"""

from __future__ import annotations

import functools
import logging
import signal
import time
from pathlib import Path

import torch
import yaml
from tqdm import tqdm

from neobert import NeoBERTLMHead
from neobert.compiled import static_batch
from neobert.config import RUNTIME_FIELDS
from shards import manifest as manifest_io
from shards.masking import IGNORE
from training import checkpoint, data, metrics, parallel, precision, preemption, validate
from training.config import Config
from training.schedule import adamw, lr_at

log = logging.getLogger("training")


class StopRun(RuntimeError):
    """Too many consecutive non-finite steps."""


class Trainer:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.rank, self.world, self.device = parallel.init()
        self.run_dir = Path(cfg.run_dir)
        self.accum = cfg.accumulation_steps(self.world)
        manifest = manifest_io.read(cfg.data.root)
        self.vocab = data.Vocab.from_manifest(manifest)
        self.model_config = cfg.model.neobert(self.vocab.size, manifest["tokenizer"]["special_tokens"]["pad"])
        self.step, self.tokens_seen, self.bad_in_row, self.skipped = 0, 0, 0, 0
        resume_path = checkpoint.to_resume(cfg.checkpoint.resume, self.run_dir)
        state = checkpoint.load(resume_path) if resume_path else None
        checkpoint.check_same_resume(parallel.gather((state["step"], str(resume_path)) if state else (None, None),
                                                     self.world))
        self._build_model(init_from=None if resume_path else cfg.checkpoint.init_from)
        if state is not None:
            self._restore(state)
            self._print(f"resumed from {resume_path} at step {self.step}")
        loaders = state["loader"] if state else None
        self.batches, self.loader = data.loader(cfg, self.vocab, self.rank, self.world, self.device, loaders)
        self.loader_state = loaders[self.rank] if loaders else self.batches.state(0, 0, [])
        self.val_dataset = validate.dataset(cfg) if cfg.validation.every else None
        self.autocast = functools.partial(precision.autocast, self.device)
        self.peak = metrics.peak_flops(self.device, cfg.log.peak_tflops)
        self.stop_requested, self.log = False, None
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
            self.log = metrics.MetricsLog(self.run_dir, cfg.log.tensorboard, self.step if state else None)

    def _build_model(self, init_from: str | None) -> None:
        """Same initial weights on every rank (seeded), stage-1 weights if asked, then the wrapper
        and AdamW over the raw parameters (decay on matrices and embeddings only)."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        raw = self.raw_model = NeoBERTLMHead(self.model_config).to(self.device)
        self.num_params = sum(p.numel() for p in raw.parameters())
        if init_from:
            self._print(f"initialised weights from {checkpoint.load_weights(raw, init_from)}")
        self.model = parallel.wrap(raw, cfg.distributed, self.world, self.device, cfg.compile)
        self.optimizer = adamw(raw, cfg.optim, cfg.schedule)

    def _print(self, msg: str) -> None:
        if self.rank == 0:
            log.info(msg)

    def _restore(self, state: dict) -> None:
        checkpoint.check_resumable(state, self.world, self.cfg.to_dict()["model"], RUNTIME_FIELDS)
        parallel.load_full_state(self.raw_model, self.optimizer, state["model"], state["optimizer"])
        self.step, self.tokens_seen, self.skipped = state["step"], state["tokens"], state["skipped"]
        checkpoint.restore_rng(state, self.rank, self.device)

    def save(self) -> Path | None:
        model_sd, optim_sd = parallel.full_state(self.raw_model, self.optimizer)
        loaders = parallel.gather(self.loader_state, self.world)
        rng = parallel.gather(checkpoint.rng_state(self.device), self.world)
        path = None
        if self.rank == 0:
            state = checkpoint.training_state(
                step=self.step, tokens=self.tokens_seen, skipped=self.skipped, model=model_sd, optimizer=optim_sd,
                rng=rng, loader=loaders, config=self.cfg.to_dict(), model_config=self.model_config.to_dict())
            path = checkpoint.save(self.run_dir, self.step, state, self.cfg.checkpoint.keep)
        parallel.barrier(self.world)
        return path

    def train_step(self) -> dict:
        """One optimizer step over `accum` micro-batches per rank; returns its metrics."""
        t0 = time.perf_counter()
        batches = [next(self.loader) for _ in range(self.accum)]
        self.loader_state = batches[-1].pop("state")
        for b in batches[:-1]:
            b.pop("state")
        counts = torch.tensor([sum(int((b["labels"] != IGNORE).sum()) for b in batches),
                               sum(b["input_ids"].numel() for b in batches),
                               sum(int((b["cu_seqlens"].diff().long() ** 2).sum()) for b in batches)],
                              dtype=torch.float64, device=self.device)
        masked, tokens, sum_len_sq = (int(x) for x in parallel.all_sum(counts, self.world).tolist())
        scale = self.world / max(masked, 1)  # DDP / FSDP average gradients over ranks; undo that
        lr = lr_at(self.step, self.cfg.optim.lr, self.cfg.schedule)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)  # loss sum, correct
        on = lambda t: t.to(self.device, non_blocking=True)  # noqa: E731
        for i, b in enumerate(batches):
            if self.cfg.compile:  # one shape per stage for the compiled blocks; padding is unlabelled
                b = static_batch(b, self.cfg.data.micro_batch_tokens, self.cfg.data.context_length, self.vocab.pad)
            with parallel.grad_sync(self.model, self.cfg.distributed, self.world, i == len(batches) - 1), \
                    self.autocast():
                out = self.model(on(b["input_ids"]), on(b["cu_seqlens"]), b["max_seqlen"], on(b["position_ids"]),
                                 labels=on(b["labels"]), reduction="sum")
            (out.loss * scale).backward()
            sums += torch.stack([out.loss.detach().double(), out.num_correct.double()])
        loss, correct = (float(x) / max(masked, 1) for x in parallel.all_sum(sums, self.world))
        grad_norm = torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), self.cfg.optim.grad_clip)
        grad_norm = float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm)
        if torch.isfinite(torch.tensor([loss, grad_norm])).all():
            self.optimizer.step()
            self.bad_in_row = 0
        else:
            self.bad_in_row += 1
            self.skipped += 1
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.tokens_seen += tokens
        dt = time.perf_counter() - t0
        flops = metrics.train_flops(self.model_config, self.num_params, tokens, sum_len_sq, masked)
        record = {
            "kind": "train", "step": self.step, "loss": loss, "accuracy": correct, "lr": lr, "grad_norm": grad_norm,
            "tokens": tokens, "masked_tokens": masked, "tokens_seen": self.tokens_seen, "tokens_per_s": tokens / dt,
            "mfu": flops / dt / (self.peak * self.world) if self.peak else None,
            "memory_mb": metrics.peak_memory_mb(self.device), "skipped": self.skipped,
        }
        if self.bad_in_row >= self.cfg.max_bad_steps:
            last_good = checkpoint.latest(self.run_dir)
            raise StopRun(
                f"{self.bad_in_row} steps in a row had a non-finite loss or gradient (last at step {self.step}); "
                f"last good checkpoint: {last_good or 'none'}. Lower optim.lr or raise schedule.warmup_steps, "
                f"then resume from it with --set checkpoint.resume={last_good}"
            )
        return record

    def validate(self) -> dict:
        return validate.run(self.model, self.val_dataset, self.cfg, self.vocab, self.rank, self.device, self.autocast)

    def _request_stop(self, signum, _frame) -> None:
        self.stop_requested = True
        self._print(f"{signal.Signals(signum).name}: finishing step {self.step + 1}, then checkpointing")

    def train(self) -> Path | None:
        """Steps until `steps`, or until SIGTERM/SIGINT reaches any rank: then every rank finishes the
        same step and checkpoints. The loader's workers are stopped on the way out, however it ends."""
        try:
            return self._steps()
        finally:
            preemption.shutdown(self.loader)

    def _steps(self) -> Path | None:
        cfg = self.cfg
        self._print(metrics.banner(cfg, self.num_params, self.step, self.accum, self.world, self.raw_model.backend,
                                   self.device, parallel.describe(cfg.distributed, self.world)))
        if self.step >= cfg.steps:
            self._print(f"nothing to do: {cfg.run_dir} is at step {self.step} of {cfg.steps} "
                        "(raise `steps`, or choose another run_dir)")
            return checkpoint.latest(self.run_dir)
        bar = tqdm(total=cfg.steps, initial=self.step, desc="train", disable=self.rank != 0, dynamic_ncols=True)
        last_saved, first_loss, record = None, None, None
        with bar, preemption.on_stop_signals(self._request_stop):
            while self.step < cfg.steps:
                record = self.train_step()
                first_loss = record["loss"] if first_loss is None else first_loss
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tokens_per_s']:.3g}")
                if self.log and (self.step % cfg.log.every == 0 or self.step == cfg.steps):
                    self.log.write(record)
                if cfg.validation.every and self.step % cfg.validation.every == 0:
                    self._log_validation()
                stop = parallel.any_rank(self.stop_requested, self.world, self.device)
                if stop or self.step % cfg.checkpoint.every == 0 or self.step == cfg.steps:
                    last_saved = self.save()
                if stop:
                    self._print(f"stopped on request at step {self.step}; checkpoint {last_saved}")
                    break
        if record is not None:
            self._print(f"done: step {self.step}, {self.tokens_seen:,} tokens seen, loss {first_loss:.4f} -> "
                        f"{record['loss']:.4f}, {self.skipped} skipped step(s), checkpoint {last_saved}")
        if self.log:
            self.log.close()
        return last_saved

    def _log_validation(self) -> None:
        result = self.validate()
        if self.log:
            self.log.write({"kind": "val", "step": self.step, **result})
        self._print(f"validation @ {self.step}: " + validate.summary(result))
