"""Two gloo processes on CPU: replicas stay identical, the loss is the global masked-token average,
and an epoch is read exactly once across ranks, also across a resume with unequal consumption."""

import hashlib
import os
import shutil
import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from shards import manifest
from shards.streams import mixture_streams
from training import checkpoint, config, data
from training.config import DataConfig

WORLD = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def join_group(rank: int, port: int) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_WORLD_SIZE=str(WORLD),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo")


def gather(obj):
    out = [None] * WORLD
    dist.all_gather_object(out, obj)
    return out


def _epoch_once(rank, port, root, out_dir):
    join_group(rank, port)
    cfg = DataConfig(root=root, context_length=256, micro_batch_tokens=1024, num_workers=0)
    vocab = data.Vocab.from_manifest(manifest.read(root))

    def packed(resume=None):
        ds = data.training_dataset(mixture_streams(root, "stage1"), cfg, seed=3)
        return data.MicroBatches(ds, cfg, vocab, 3, rank, WORLD, resume), len(ds)

    first, per_rank = packed()
    seen = []
    docs = first.documents()
    for _ in range(10 + 7 * rank):  # unequal consumption, as token-budget packing gives
        taken, doc = next(docs)
        seen.append(hashlib.sha1(doc.tobytes()).hexdigest())
    states = gather(first.state(taken, 0, []))
    del docs, first  # streaming lets one live dataset use a cache folder
    second, _ = packed(states)
    docs = second.documents()
    while taken < per_rank:
        taken, doc = next(docs)
        seen.append(hashlib.sha1(doc.tobytes()).hexdigest())
    torch.save({"seen": seen, "per_rank": per_rank}, f"{out_dir}/rank{rank}.pt")
    dist.destroy_process_group()


def test_every_sample_of_an_epoch_once_across_ranks_and_a_resume(sample_output, tmp_path):
    mp.spawn(_epoch_once, args=(free_port(), str(sample_output), str(tmp_path)), nprocs=WORLD)
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    seen = [h for r in results for h in r["seen"]]
    ds_docs = set()
    for stream in mixture_streams(str(sample_output), "stage1"):
        from streaming import StreamingDataset

        ds_docs |= {hashlib.sha1(s["input_ids"].tobytes()).hexdigest()
                    for s in StreamingDataset(streams=[stream], shuffle=False, batch_size=1)}
    padding = WORLD * results[0]["per_rank"] - len(ds_docs)  # StreamingDataset pads to a multiple of ranks
    assert set(seen) == ds_docs, "a sample of the epoch was never read"
    assert len(seen) - len(set(seen)) == padding, "a sample was read twice"
    assert len(set(results[0]["seen"]) & set(results[1]["seen"])) <= padding


def _epochs_in_lockstep(rank, port, root, out_dir):
    join_group(rank, port)
    cfg = DataConfig(root=root, context_length=256, micro_batch_tokens=2048, num_workers=0)
    ds = data.training_dataset(mixture_streams(root, "stage1"), cfg, seed=1)
    it = iter(data.MicroBatches(ds, cfg, data.Vocab.from_manifest(manifest.read(root)), 1, rank, WORLD))
    epochs = []
    for _ in range(120):  # a training step: one micro-batch per rank, then a collective
        epochs.append(next(it)["state"]["taken"] // len(ds))
        dist.all_reduce(torch.ones(1))
    torch.save(epochs, f"{out_dir}/epochs{rank}.pt")
    dist.destroy_process_group()


def test_ranks_cross_epoch_ends_at_different_steps_without_deadlock(sample_output, tmp_path):
    ctx = mp.spawn(_epochs_in_lockstep, args=(free_port(), str(sample_output), str(tmp_path)), nprocs=WORLD,
                   join=False)
    deadline = time.time() + 180
    while not ctx.join(timeout=1):
        if time.time() > deadline:
            for p in ctx.processes:
                p.kill()
            raise AssertionError("ranks deadlocked at an epoch boundary")
    e0, e1 = (torch.load(tmp_path / f"epochs{r}.pt") for r in range(WORLD))
    assert max(e0) >= 2 and any(a != b for a, b in zip(e0, e1)), "the case under test: ranks in different epochs"


def tiny(root, run_dir, distributed="ddp"):
    return config.load(None, [
        f"run_dir={run_dir}", f"distributed={distributed}", "steps=3", "global_batch_tokens=4096",
        "model.hidden_size=32", "model.num_hidden_layers=2", "model.num_attention_heads=2",
        "model.intermediate_size=64", "model.max_length=256",
        f"data.root={root}", "data.context_length=256", "data.micro_batch_tokens=1024", "data.num_workers=0",
        "optim.lr=1e-2", "schedule.warmup_steps=1", "schedule.decay_end=10",
        "checkpoint.every=100", "validation.every=100", "log.tensorboard=false",
    ])


def _train(rank, port, root, run_dir, distributed, out_dir):
    join_group(rank, port)
    from training.loop import Trainer

    cfg = tiny(root, run_dir, distributed)
    trainer = Trainer(cfg)
    seen_batches = []
    loader = trainer.loader

    def recording():
        for b in loader:
            seen_batches.append({k: v for k, v in b.items() if k != "state"})
            yield b

    trainer.loader = recording()
    report = []
    for _ in range(cfg.steps):
        before = {k: v.full_tensor().clone() if hasattr(v, "full_tensor") else v.detach().clone()
                  for k, v in trainer.raw_model.state_dict().items()}
        seen_batches.clear()
        record = trainer.train_step()
        # reference: the step's loss from the pre-step weights, summed over every rank's masked tokens
        from neobert import NeoBERTLMHead

        ref = NeoBERTLMHead(trainer.model_config)
        ref.load_state_dict(before)
        with torch.no_grad():
            outs = [ref(b["input_ids"], b["cu_seqlens"], b["max_seqlen"], b["position_ids"], labels=b["labels"],
                        reduction="sum") for b in seen_batches]
        local = torch.tensor([sum(float(o.loss) for o in outs), sum(int(o.num_masked) for o in outs)],
                             dtype=torch.float64)
        per_rank = gather(local)
        after = torch.cat([(v.full_tensor() if hasattr(v, "full_tensor") else v).flatten()
                           for v in trainer.raw_model.state_dict().values()])
        report.append({"loss": record["loss"], "per_rank": per_rank, "weights": gather(after)})
    validation = trainer.validate()  # FSDP2: ranks with unequal shares must still run equal forwards
    assert validation["masked_tokens"] > 0
    torch.save({"steps": report, "validation": gather(validation)}, f"{out_dir}/report{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.parametrize("distributed", ["ddp", "fsdp2"])
def test_two_ranks_identical_weights_and_global_masked_token_loss(sample_output, tmp_path, distributed):
    mp.spawn(_train, args=(free_port(), str(sample_output), str(tmp_path / "run"), distributed, str(tmp_path)),
             nprocs=WORLD)
    report = torch.load(tmp_path / "report0.pt")
    v0, v1 = report["validation"]
    assert v0 == v1 and "mlm_perplexity_0-256" in v0 and v0["pll_positions"] > 0  # FSDP2: PLL forwards in step too
    differs = False
    for step in report["steps"]:
        w0, w1 = step["weights"]
        assert torch.equal(w0, w1), "ranks hold different weights after a step"
        (s0, n0), (s1, n1) = step["per_rank"].copy()[0].tolist(), step["per_rank"][1].tolist()
        assert n0 != n1, "the case under test: ranks with different masked-token counts"
        assert step["loss"] == pytest.approx((s0 + s1) / (n0 + n1), rel=1e-5)
        mean_of_means = (s0 / n0 + s1 / n1) / 2
        differs |= abs(mean_of_means - step["loss"]) > 1e-4
    assert differs, "the global average never differed from a mean of per-rank means: the test proves nothing"


def _resume_from_unequal_checkpoints(rank, port, root, tmp):
    join_group(rank, port)
    from training.loop import Trainer

    shared, behind = f"{tmp}/run", f"{tmp}/behind"
    trainer = Trainer(tiny(root, shared))
    for _ in range(2):
        trainer.train_step()
        trainer.save()
    dist.barrier()
    if rank == 1:  # this rank's node-local copy of run_dir lags one checkpoint behind
        shutil.copytree(shared, behind)
        shutil.rmtree(checkpoint.latest(behind))
    dist.barrier()
    try:
        Trainer(tiny(root, shared if rank == 0 else behind))
        error = None
    except ValueError as e:
        error = str(e)
    torch.save(error, f"{tmp}/error{rank}.pt")
    dist.destroy_process_group()


def test_ranks_that_resolve_different_resume_steps_are_refused(sample_output, tmp_path):
    mp.spawn(_resume_from_unequal_checkpoints, args=(free_port(), str(sample_output), str(tmp_path)), nprocs=WORLD)
    assert [p.name for p in checkpoint.valid(tmp_path / "run" / "checkpoints")] == ["step_00000001", "step_00000002"]
    assert checkpoint.latest(tmp_path / "behind").name == "step_00000001", "the case under test: unequal steps"
    for rank in range(WORLD):  # every rank refuses, so none waits in a collective for the others
        error = torch.load(tmp_path / f"error{rank}.pt")
        assert error is not None, f"rank {rank} resumed although the ranks' checkpoints differ"
        assert "rank(s) 0: step 2" in error and "rank(s) 1: step 1" in error, error
