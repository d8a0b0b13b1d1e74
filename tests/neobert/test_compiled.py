"""The speed levers keep the outputs: compiled blocks equal eager ones (forward and gradients),
a static batch gives real tokens the same hidden states and the same loss, and static batches of
different real lengths share one shape, and the compiled varlen block (traced on fake CUDA tensors)
is one full graph that such batches reuse."""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from neobert import NeoBERTConfig, NeoBERTLMHead
from neobert.attention import PackedDocs, _torch_varlen
from neobert.compiled import compile_blocks, static_batch
from neobert.model import EncoderBlock, rope_angles


def labelled(batch: dict, every: int = 3) -> dict:
    ids = batch["input_ids"]
    return {**batch, "labels": torch.where(torch.arange(len(ids)) % every == 0, ids, -100)}


def test_static_batch_keeps_real_outputs_and_loss(tiny_model, random_docs, packer):
    batch = labelled(packer(random_docs))
    padded = static_batch(batch, num_tokens=100, max_seqlen=32)
    assert padded["input_ids"].shape == (100,) and padded["max_seqlen"] == 32
    assert padded["cu_seqlens"].tolist() == [0, 5, 22, 23, 53, 85, 100]  # 47 padding tokens: 32 + 15
    assert padded["position_ids"][53:].tolist() == [*range(32), *range(15)]
    with torch.no_grad():
        ref, got = tiny_model(**batch), tiny_model(**padded)
    assert torch.equal(got.hidden_states[:53], ref.hidden_states)  # sdpa: documents are independent
    assert torch.equal(got.loss, ref.loss) and got.num_masked == ref.num_masked


def test_static_batch_refuses_what_does_not_fit(random_docs, packer):
    batch = packer(random_docs)
    for bucket in (dict(num_tokens=50, max_seqlen=32),    # fewer tokens than the batch
                   dict(num_tokens=100, max_seqlen=16)):  # a document longer than max_seqlen
        with pytest.raises(ValueError, match="does not fit the bucket"):
            static_batch(batch, **bucket)


def test_compiled_blocks_match_eager_forward_and_gradients(random_docs, packer):
    batch = labelled(packer(random_docs))
    results = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = NeoBERTLMHead(NeoBERTConfig.tiny()).train()
        names = list(model.state_dict())
        if compiled:
            compile_blocks(model, backend="aot_eager")  # AOT autograd's joint graph, no C++ toolchain
            assert list(model.state_dict()) == names  # checkpoints keep the published tensor names
        out = model(**batch)
        out.loss.backward()
        results.append((out.hidden_states.detach(), [p.grad for p in model.parameters()]))
    (h0, g0), (h1, g1) = results
    assert torch.allclose(h0, h1, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g0, g1))
    assert any(b.abs().max() > 0 for b in g1)


def test_static_batches_share_one_shape(random_docs, packer):
    """What the compiled varlen block is specialised on: the token count and max_seqlen."""
    shorter = [d[: max(1, len(d) // 2)] for d in random_docs]
    shapes = {(b["input_ids"].shape, b["position_ids"].shape, b["labels"].shape, b["max_seqlen"])
              for b in (static_batch(labelled(packer(docs)), num_tokens=64, max_seqlen=32)
                        for docs in (random_docs, shorter, random_docs[:1]))}
    assert len(shapes) == 1
    assert len({packer(docs)["input_ids"].shape for docs in (random_docs, shorter, random_docs[:1])}) == 3


@pytest.mark.skipif(_torch_varlen() is None or not torch.backends.cuda.is_built(),
                    reason="needs torch.nn.attention.varlen and a CUDA build of torch (no GPU needed)")
def test_compiled_varlen_block_is_one_graph_per_stage():
    """Traced on fake CUDA tensors (no GPU): the varlen block compiles to one full graph, which
    static batches with new document counts reuse; a new max_seqlen recompiles once, then no more."""
    torch._dynamo.reset()  # graphs other tests compiled for EncoderBlock.forward must not count
    graphs = []

    def backend(gm, example_inputs):  # records each graph; runs it on fake tensors
        graphs.append(gm)
        return gm.forward

    config = NeoBERTConfig.tiny()
    with FakeTensorMode(allow_non_fake_inputs=True), torch.device("cuda"):
        torch.set_default_dtype(torch.bfloat16)  # fake parameters cannot be cast after creation
        try:
            block = EncoderBlock(config)
        finally:
            torch.set_default_dtype(torch.float32)
        block.compile(fullgraph=True, backend=backend)
        x = torch.randn(64, config.hidden_size, dtype=torch.bfloat16)
        cos, sin = rope_angles(torch.arange(64), config.dim_head)

        def run(bounds: list[int], max_seqlen: int) -> int:
            cu = torch.tensor(bounds, dtype=torch.int32)
            block(x, cos, sin, PackedDocs.prepare(cu, max_seqlen, 64, "torch_varlen", "cuda"))
            return len(graphs)

        assert [run(b, 64) for b in ([0, 30, 64], [0, 10, 30, 64], [0, 5, 10, 30, 64])] == [1, 1, 1]
        assert [run(b, m) for b, m in (([0, 30, 64], 34), ([0, 10, 64], 54), ([0, 1, 64], 63))] == [2, 2, 2]
    assert all(any("varlen" in str(n.target) for n in g.graph.nodes) for g in graphs)  # attention inside the graph
