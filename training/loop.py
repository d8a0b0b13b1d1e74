"""The trainer: set up (distributed, model, data, resume), then a thin loop of steps.

One step = `accumulation_steps` packed micro-batches per rank. The loss is the sum of
cross-entropies over every masked token of the step, on every rank, divided by the global
count of masked tokens (all-reduced before the backward passes) — never a mean of per-batch or
per-rank means. Checks run before `optimizer.step()`: a NaN/inf loss or gradient skips the step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import resource
import signal
import time
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from tqdm import tqdm

from neobert import NeoBERTConfig, NeoBERTLMHead
from shards import manifest as manifest_io
from shards.streams import mixture_streams, validation_streams
from streaming import StreamingDataset
from training import checkpoint, data, metrics, validate
from training.config import Config
from training.schedule import lr_at

log = logging.getLogger("training")


class StopRun(RuntimeError):
    """Too many consecutive non-finite steps."""


def _init_distributed() -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return (dist.get_rank() if world > 1 else 0), world, device


def _ignore_sigint(_worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C to the trainer, which finishes the step and checkpoints."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _gather(obj, world: int) -> list:
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


class Trainer:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.rank, self.world, self.device = _init_distributed()
        self.run_dir = Path(cfg.run_dir)
        self.accum = cfg.accumulation_steps(self.world)
        manifest = manifest_io.read(cfg.data.root)
        self.vocab = data.Vocab.from_manifest(manifest)
        self._build_model(manifest["tokenizer"]["special_tokens"]["pad"])
        self.step, self.tokens_seen, self.bad_in_row, self.skipped = 0, 0, 0, 0
        resume_path = self._resume_path()
        state = checkpoint.load(resume_path) if resume_path else None
        if state is not None:
            self._restore(state)
            self._print(f"resumed from {resume_path} at step {self.step}")
        self._build_data(state["loader"] if state else None)
        self.autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if self.device.type == "cuda" \
            else contextlib.nullcontext
        self.peak = metrics.peak_flops(self.device, cfg.log.peak_tflops)
        self.stop_requested = False
        self.log = None
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
            self.log = metrics.MetricsLog(self.run_dir, cfg.log.tensorboard, self.step if state else None)

    def _build_model(self, pad_id: int) -> None:
        """Same initial weights on every rank (seeded), stage-2 weights if asked, then the wrapper
        (DDP or FSDP2) and the optimizer over the wrapped parameters."""
        cfg, m = self.cfg, self.cfg.model
        self.model_config = NeoBERTConfig(
            vocab_size=self.vocab.size, pad_token_id=pad_id, hidden_size=m.hidden_size,
            num_hidden_layers=m.num_hidden_layers, num_attention_heads=m.num_attention_heads,
            intermediate_size=m.intermediate_size, max_length=m.max_length, norm_eps=m.norm_eps,
            attention_backend=m.attention_backend, activation_checkpointing=m.activation_checkpointing,
        )
        torch.manual_seed(cfg.seed)
        model = self.raw_model = NeoBERTLMHead(self.model_config).to(self.device)
        self.num_params = sum(p.numel() for p in model.parameters())
        self.embedding_params = model.model.encoder.weight.numel()
        if cfg.checkpoint.init_from and self._resume_path() is None:
            source = checkpoint.resolve(cfg.checkpoint.init_from)
            self._load_weights(checkpoint.load(source)["model"], source)
            self._print(f"initialised weights from {source}")
        if cfg.compile:
            model = torch.compile(model, dynamic=True)
        if self.world > 1 and cfg.distributed == "fsdp2":
            model = self._fully_shard(model)
        elif self.world > 1:
            model = DDP(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.model = model
        decay = [p for p in self.raw_model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.raw_model.parameters() if p.dim() < 2]
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=lr_at(0, o.lr, cfg.schedule), betas=o.betas, eps=o.eps,
        )

    def _build_data(self, loader_states: list[dict] | None) -> None:
        cfg = self.cfg
        streams = mixture_streams(cfg.data.root, cfg.data.mixture, cfg.data.cache_dir)
        dataset = data.training_dataset(streams, cfg.data, cfg.seed)
        self.packed = data.PackedMLM(dataset, cfg.data, self.vocab, cfg.seed, self.rank, self.world, loader_states)
        workers = cfg.data.num_workers
        self.loader = iter(DataLoader(self.packed, batch_size=None, num_workers=workers,
                                      worker_init_fn=_ignore_sigint if workers else None,
                                      prefetch_factor=4 if workers else None,
                                      pin_memory=self.device.type == "cuda"))
        self.loader_state = loader_states[self.rank] if loader_states else self.packed.state(0, 0, [])
        self.val_dataset = None
        if cfg.validation.every:
            try:
                val_streams = validation_streams(cfg.data.root, cfg.data.cache_dir)
            except ValueError as e:
                raise ValueError(f"{e}, or set validation.every=0 to train without validation") from None
            self.val_dataset = StreamingDataset(streams=val_streams, shuffle=False, batch_size=1,
                                                num_canonical_nodes=data.num_nodes())

    # ----- setup helpers -------------------------------------------------------------------------
    def _print(self, msg: str) -> None:
        if self.rank == 0:
            log.info(msg)

    def _resume_path(self) -> Path | None:
        spec = self.cfg.checkpoint.resume
        if spec == "none":
            return None
        if spec == "auto":
            return checkpoint.latest(self.run_dir)
        return checkpoint.resolve(spec)

    def _load_weights(self, weights: dict, source) -> None:
        try:
            self.raw_model.load_state_dict(weights)
        except RuntimeError as e:
            raise ValueError(f"{source}: its weights do not fit this model config ({e}); "
                             "use the model section the checkpoint was trained with") from None

    def _fully_shard(self, model):
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) \
            if self.device.type == "cuda" else MixedPrecisionPolicy()
        for block in self.raw_model.model.transformer_encoder:
            fully_shard(block, mp_policy=mp)
        fully_shard(self.raw_model, mp_policy=mp)
        return model

    def _full_state(self) -> tuple[dict, dict]:
        """Unsharded model and optimizer states keyed by parameter name, the same for a single
        process, DDP and FSDP2, so a checkpoint resumes under any of them."""
        return get_state_dict(self.raw_model, self.optimizer,
                              options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def _restore(self, state: dict) -> None:
        if len(state["loader"]) != self.world:
            raise ValueError(f"the checkpoint was written by {len(state['loader'])} ranks, this run has "
                             f"{self.world}: resume with the same number of processes")
        runtime = ("attention_backend", "activation_checkpointing")  # free to change between runs
        saved, now = ({k: v for k, v in c["model"].items() if k not in runtime}
                      for c in (state["config"], self.cfg.to_dict()))
        if saved != now:
            raise ValueError(f"the checkpoint's model section {saved} differs from this config's {now}; "
                             "resume with the same model section")
        set_state_dict(self.raw_model, self.optimizer, model_state_dict=state["model"],
                       optim_state_dict=state["optimizer"], options=StateDictOptions(full_state_dict=True))
        self.step, self.tokens_seen, self.skipped = state["step"], state["tokens"], state["skipped"]
        torch.set_rng_state(state["rng"]["torch"][self.rank])
        if self.device.type == "cuda" and state["rng"]["cuda"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"][self.rank])

    # ----- checkpoints ---------------------------------------------------------------------------
    def save(self) -> Path | None:
        model_sd, optim_sd = self._full_state()
        loaders = _gather(self.loader_state, self.world)
        rng = _gather({"torch": torch.get_rng_state(),
                       "cuda": torch.cuda.get_rng_state() if self.device.type == "cuda" else None}, self.world)
        path = None
        if self.rank == 0:
            state = {
                "step": self.step, "tokens": self.tokens_seen, "skipped": self.skipped,
                "model": model_sd, "optimizer": optim_sd,
                "schedule": {"lr": lr_at(self.step, self.cfg.optim.lr, self.cfg.schedule)},
                "rng": {"torch": [r["torch"] for r in rng], "cuda": [r["cuda"] for r in rng if r["cuda"] is not None]},
                "loader": loaders, "config": self.cfg.to_dict(), "model_config": self.model_config.to_dict(),
            }
            path = checkpoint.save(self.run_dir, self.step, state, self.cfg.checkpoint.keep)
        if self.world > 1:
            dist.barrier()
        return path

    # ----- one step ------------------------------------------------------------------------------
    def train_step(self) -> dict:
        """One optimizer step over `accum` micro-batches per rank; returns its metrics."""
        t0 = time.perf_counter()
        batches = [next(self.loader) for _ in range(self.accum)]
        self.loader_state = batches[-1].pop("state")
        for b in batches[:-1]:
            b.pop("state")
        local = torch.tensor([sum(int((b["labels"] != -100).sum()) for b in batches),
                              sum(b["input_ids"].numel() for b in batches),
                              sum(int((b["cu_seqlens"].diff().long() ** 2).sum()) for b in batches)],
                             dtype=torch.float64, device=self.device)
        totals = local.clone()
        if self.world > 1:
            dist.all_reduce(totals)
        masked, tokens, sum_len_sq = (int(x) for x in totals.tolist())
        scale = self.world / max(masked, 1)  # DDP / FSDP average gradients over ranks; undo that
        lr = lr_at(self.step, self.cfg.optim.lr, self.cfg.schedule)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.float64, device=self.device)
        for i, b in enumerate(batches):
            last = i == len(batches) - 1
            with self._sync(last), self.autocast():
                out = self.model(*self._on_device(b), labels=b["labels"].to(self.device, non_blocking=True),
                                 reduction="sum")
            (out.loss * scale).backward()
            loss_sum += out.loss.detach().double()
            correct += out.num_correct.double()
        stats = torch.stack([loss_sum, correct])
        if self.world > 1:
            dist.all_reduce(stats)
        loss = float(stats[0]) / max(masked, 1)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), self.cfg.optim.grad_clip)
        if hasattr(grad_norm, "full_tensor"):
            grad_norm = grad_norm.full_tensor()
        grad_norm = float(grad_norm)
        finite = torch.isfinite(torch.tensor([loss, grad_norm])).all()
        if finite:
            self.optimizer.step()
            self.bad_in_row = 0
        else:
            self.bad_in_row += 1
            self.skipped += 1
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.tokens_seen += tokens
        dt = time.perf_counter() - t0
        flops = metrics.train_flops(self.model_config, self.num_params, self.embedding_params,
                                    tokens, sum_len_sq, masked)
        record = {
            "kind": "train", "step": self.step, "loss": loss, "accuracy": float(stats[1]) / max(masked, 1),
            "lr": lr, "grad_norm": grad_norm, "tokens": tokens, "masked_tokens": masked,
            "tokens_seen": self.tokens_seen, "tokens_per_s": tokens / dt,
            "mfu": flops / dt / (self.peak * self.world) if self.peak else None,
            "memory_mb": (torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda"
                          else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20,
            "skipped": self.skipped,
        }
        if self.bad_in_row >= self.cfg.max_bad_steps:
            last_good = checkpoint.latest(self.run_dir)
            raise StopRun(
                f"{self.bad_in_row} steps in a row had a non-finite loss or gradient (last at step {self.step}); "
                f"last good checkpoint: {last_good or 'none'}. Lower optim.lr or raise schedule.warmup_steps, "
                f"then resume from it with --set checkpoint.resume={last_good}"
            )
        return record

    def _on_device(self, b: dict) -> tuple:
        to = lambda t: t.to(self.device, non_blocking=True)  # noqa: E731
        return to(b["input_ids"]), to(b["cu_seqlens"]), b["max_seqlen"], to(b["position_ids"])

    def _sync(self, last: bool):
        """Gradients are reduced across ranks only on the step's last micro-batch."""
        if self.world == 1 or last:
            if self.world > 1 and self.cfg.distributed == "fsdp2":
                self.model.set_requires_gradient_sync(True)
            return contextlib.nullcontext()
        if self.cfg.distributed == "fsdp2":
            self.model.set_requires_gradient_sync(False)
            return contextlib.nullcontext()
        return self.model.no_sync()

    def validate(self) -> dict:
        """Scored at validation.context_length (default: the model's max length), not the training
        context, so a stage-1 model's loss beyond 1k positions shows too."""
        v = self.cfg.validation
        context = v.context_length or self.cfg.model.max_length
        cfg = dataclasses.replace(self.cfg.data, context_length=context,
                                  micro_batch_tokens=max(context, self.cfg.data.micro_batch_tokens))
        batches = data.validation_batches(self.val_dataset, cfg, self.vocab, v.seed, self.rank, v.max_documents)
        bar = tqdm(batches, desc="validation", unit="batch", leave=False, disable=self.rank != 0)
        return validate.evaluate(self.model, bar, self.device, self.autocast)

    # ----- the loop ------------------------------------------------------------------------------
    def _request_stop(self, signum, _frame) -> None:
        self.stop_requested = True
        self._print(f"{signal.Signals(signum).name}: finishing step {self.step + 1}, then checkpointing")

    def _stop_agreed(self) -> bool:
        flag = torch.tensor([float(self.stop_requested)], device=self.device)
        if self.world > 1:
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def banner(self) -> str:
        c = self.cfg
        per_step = c.data.micro_batch_tokens * self.accum * self.world
        return "\n".join([
            f"run {c.run_dir}: {self.num_params:,} parameters, steps {self.step} -> {c.steps}",
            f"tokens per step: {per_step:,} budget ({self.world} rank(s) × {self.accum} accumulation steps × "
            f"{c.data.micro_batch_tokens:,}-token micro-batches; packing fills each to <= budget)",
            f"masked-token budget: ~{int(per_step * c.data.mask_rate):,} per step "
            f"({c.data.mask_rate:.0%} of non-special tokens), loss = sum over them / their global count",
            f"context {c.data.context_length}, long documents: {c.data.long_docs}, mixture {c.data.mixture}",
            f"backend: attention {self.raw_model.backend}, device {self.device}, "
            f"{'bf16 autocast' if self.device.type == 'cuda' else 'float32'}, "
            f"{c.distributed if self.world > 1 else 'single process'}"
            f"{' (' + dist.get_backend() + ')' if self.world > 1 else ''}",
        ])

    def train(self) -> Path | None:
        cfg = self.cfg
        self._print(self.banner())
        if self.step >= cfg.steps:
            self._print(f"nothing to do: {cfg.run_dir} is at step {self.step} of {cfg.steps} "
                        "(raise `steps`, or choose another run_dir)")
            return checkpoint.latest(self.run_dir)
        previous = {s: signal.signal(s, self._request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        bar = tqdm(total=cfg.steps, initial=self.step, desc="train", disable=self.rank != 0, dynamic_ncols=True)
        last_saved, first_loss, record = None, None, None
        try:
            while self.step < cfg.steps:
                record = self.train_step()
                first_loss = record["loss"] if first_loss is None else first_loss
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tokens_per_s']:.3g}")
                if self.log and (self.step % cfg.log.every == 0 or self.step == cfg.steps):
                    self.log.write(record)
                if cfg.validation.every and self.step % cfg.validation.every == 0:
                    self._log_validation()
                stop = self._stop_agreed()
                if stop or self.step % cfg.checkpoint.every == 0 or self.step == cfg.steps:
                    last_saved = self.save()
                if stop:
                    self._print(f"stopped on request at step {self.step}; checkpoint {last_saved}")
                    break
        finally:
            bar.close()
            for s, h in previous.items():
                signal.signal(s, h)
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
        self._print(f"validation @ {self.step}: " + ", ".join(
            f"{k} {v:.4g}" for k, v in result.items() if k.startswith(("loss", "pseudo"))))
