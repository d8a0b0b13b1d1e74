"""Everything distributed in one place: process group, DDP/FSDP2 wrapping, gradient-sync control,
gathers and reductions, and the unsharded state of model + optimizer.

Invariant: a single process, DDP and FSDP2 see the same API here, and the full state dicts are
the same for all three, so a checkpoint written under one resumes under another.
"""

from __future__ import annotations

import contextlib
import os

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict
from torch.nn.parallel import DistributedDataParallel as DDP

from neobert.compiled import compile_blocks

KINDS = ("ddp", "fsdp2")
FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def init() -> tuple[int, int, torch.device]:
    """(rank, world size, device) from torchrun's environment; a single process without it."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return (dist.get_rank() if world > 1 else 0), world, device


def describe(kind: str, world: int) -> str:
    return f"{kind} ({dist.get_backend()})" if world > 1 else "single process"


def wrap(raw: torch.nn.Module, kind: str, world: int, device: torch.device, compile: bool) -> torch.nn.Module:
    """The model the steps call: `raw` with its blocks compiled in place if asked
    (`neobert.compiled.compile_blocks`: names and checkpoints unchanged), sharded in place (FSDP2,
    one unit per block), and under DDP when several processes replicate it."""
    model = raw
    if compile:
        compile_blocks(raw)
    if world > 1 and kind == "fsdp2":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) \
            if device.type == "cuda" else MixedPrecisionPolicy()
        for block in raw.model.transformer_encoder:
            fully_shard(block, mp_policy=mp)
        fully_shard(raw, mp_policy=mp)
    if world > 1 and kind == "ddp":
        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    return model


def grad_sync(model: torch.nn.Module, kind: str, world: int, sync: bool):
    """Gradients are reduced across ranks only on a step's last micro-batch (`sync`)."""
    if world == 1:
        return contextlib.nullcontext()
    if kind == "fsdp2":
        model.set_requires_gradient_sync(sync)
        return contextlib.nullcontext()
    return contextlib.nullcontext() if sync else model.no_sync()


def gather(obj, world: int) -> list:
    """Every rank's `obj`, in rank order, on every rank."""
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def all_sum(t: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        dist.all_reduce(t)
    return t


def any_rank(flag: bool, world: int, device: torch.device) -> bool:
    """True on every rank when it is true on one (e.g. a stop request that reached one rank)."""
    t = torch.tensor([float(flag)], device=device)
    if world > 1:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Unsharded model and optimizer states keyed by parameter name (CPU)."""
    return get_state_dict(model, optimizer, options=FULL)


def load_full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, model_sd: dict, optim_sd: dict) -> None:
    set_state_dict(model, optimizer, model_state_dict=model_sd, optim_state_dict=optim_sd,
                   options=StateDictOptions(full_state_dict=True))
