"""The model computes the spec: one block against plain matrix ops, packed == padded, no leakage,
masked-only decoding, the published init."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from neobert import NeoBERTConfig, NeoBERTLMHead
from neobert.attention import PackedDocs, select_backend
from neobert.model import EncoderBlock, rope_angles


def reference_block(x, positions, W, eps=1e-5, heads=12, d=64, ffn_hidden=2048):
    """One NeoBERT block for one document, from the spec with plain float64 matrix ops."""
    def rmsnorm(h, w):
        return h / torch.sqrt((h * h).mean(-1, keepdim=True) + eps) * w

    x = x.double()
    W = {k: v.double() for k, v in W.items()}
    h = rmsnorm(x, W["attention_norm"])
    qkv = h @ W["qkv"].T  # (n, 3 * heads * d), head-interleaved
    pos = positions.double()
    outs = []
    for head in range(heads):
        base = 3 * d * head
        q, k, v = (qkv[:, base + j * d: base + (j + 1) * d].clone() for j in range(3))
        for t in (q, k):
            for i in range(d // 2):
                angle = pos * 10000.0 ** (-2 * i / d)
                a, b = t[:, 2 * i].clone(), t[:, 2 * i + 1].clone()
                t[:, 2 * i] = a * torch.cos(angle) - b * torch.sin(angle)
                t[:, 2 * i + 1] = a * torch.sin(angle) + b * torch.cos(angle)
        scores = q @ k.T / math.sqrt(d)
        p = torch.exp(scores - scores.max(-1, keepdim=True).values)
        outs.append((p / p.sum(-1, keepdim=True)) @ v)
    x = x + torch.cat(outs, dim=-1) @ W["wo"].T
    h = rmsnorm(x, W["ffn_norm"])
    gate, up = h @ W["w12"][:ffn_hidden].T, h @ W["w12"][ffn_hidden:].T
    return x + (gate * torch.sigmoid(gate) * up) @ W["w3"].T


def test_block_matches_hand_written_reference(packer):
    torch.manual_seed(0)
    block = EncoderBlock(NeoBERTConfig())  # the published dimensions
    with torch.no_grad():  # non-trivial weights everywhere, norms included
        for p in block.parameters():
            p.copy_(torch.randn_like(p) * 0.05 + (1.0 if p.dim() == 1 else 0.0))
    W = {"attention_norm": block.attention_norm.weight, "qkv": block.qkv.weight, "wo": block.wo.weight,
         "ffn_norm": block.ffn_norm.weight, "w12": block.ffn.w12.weight, "w3": block.ffn.w3.weight}
    W = {k: v.detach() for k, v in W.items()}
    lengths = (7, 4)  # two documents: positions restart at 0 for the second
    x = torch.randn(sum(lengths), 768)
    batch = packer([torch.zeros(n, dtype=torch.long) for n in lengths])
    docs = PackedDocs.prepare(batch["cu_seqlens"], batch["max_seqlen"], sum(lengths), "sdpa", "cpu")
    cos, sin = rope_angles(batch["position_ids"], 64)
    with torch.no_grad():
        ours = block(x, cos, sin, docs)
    expected = torch.cat([reference_block(part, torch.arange(len(part)), W) for part in x.split(lengths)])
    assert (ours.double() - expected).abs().max() < 1e-4
    assert (ours - x).abs().max() > 0.1  # the block did something


def test_packed_equals_padded_per_document(tiny_model, random_docs, packer):
    with torch.no_grad():
        packed = tiny_model.model(**packer(random_docs))
        L = max(len(d) for d in random_docs)
        ids = torch.zeros(len(random_docs), L, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, d in enumerate(random_docs):
            ids[row, : len(d)], mask[row, : len(d)] = d, 1
        padded = tiny_model.model(ids, attention_mask=mask)
        ids_other_padding = ids.masked_fill(mask == 0, 7)  # padding keys are masked: content is irrelevant
        padded_other = tiny_model.model(ids_other_padding, attention_mask=mask)
    for row, part in enumerate(packed.split([len(d) for d in random_docs])):
        assert (part - padded[row, : len(part)]).abs().max() < 1e-5
        assert (part - padded_other[row, : len(part)]).abs().max() < 1e-5
    assert mask.eq(0).any()  # the case under test: rows really were padded


def test_no_cross_document_leakage(tiny_model, random_docs, packer):
    changed = [d.clone() for d in random_docs]
    changed[1] = torch.flip(changed[1], dims=[0]) + 1
    with torch.no_grad():
        before = tiny_model.model(**packer(random_docs)).split([len(d) for d in random_docs])
        after = tiny_model.model(**packer(changed)).split([len(d) for d in random_docs])
    for i, (a, b) in enumerate(zip(before, after)):
        if i == 1:
            assert not torch.equal(a, b)  # the edited document did change
        else:
            assert torch.equal(a, b)


def test_masked_only_decoding_equals_full_decoding(tiny_model, random_docs, packer):
    batch = packer(random_docs)
    g = torch.Generator().manual_seed(3)
    labels = torch.where(torch.rand(len(batch["input_ids"]), generator=g) < 0.3, batch["input_ids"], -100)
    seen = []
    hook = tiny_model.decoder.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[0]))
    with torch.no_grad():
        masked = tiny_model(**batch, labels=labels)
        summed = tiny_model(**batch, labels=labels, reduction="sum")
        full = tiny_model(**batch)
    hook.remove()
    where = labels != -100
    assert seen[0] == where.sum() < len(labels)  # decoder ran on labelled rows only
    assert full.logits.shape == (len(labels), 30522) and masked.logits is None
    expected = F.cross_entropy(full.logits[where], labels[where])
    assert torch.allclose(masked.loss, expected, rtol=1e-6)
    assert torch.allclose(summed.loss, expected * where.sum(), rtol=1e-6)
    assert masked.num_masked == where.sum()
    assert masked.num_correct == (full.logits[where].argmax(-1) == labels[where]).sum()


def test_accuracy_counts_hits_and_empty_labels_give_zero_loss(tiny_model, random_docs, packer):
    batch = packer(random_docs)
    with torch.no_grad():
        predicted = tiny_model(**batch).logits.argmax(-1)
        labels = torch.full_like(predicted, -100)
        labels[:10] = predicted[:10]  # ten labels the model gets right
        out = tiny_model(**batch, labels=labels)
        none = tiny_model(**batch, labels=torch.full_like(predicted, -100))
    assert out.num_masked == 10 and out.num_correct == 10
    assert none.num_masked == 0 and none.loss == 0 and not none.loss.isnan()


def test_padded_user_path_with_labels(tiny_model, random_docs, packer):
    ids = random_docs[3][None]
    labels = torch.full_like(ids, -100)
    labels[0, 3] = ids[0, 3]
    with torch.no_grad():
        padded = tiny_model(ids, attention_mask=torch.ones_like(ids), labels=labels)
        packed = tiny_model(**packer([random_docs[3]]), labels=labels[0])
    assert padded.hidden_states.shape == (1, 30, 64)
    assert torch.allclose(padded.loss, packed.loss, atol=1e-6)


def test_published_init():
    torch.manual_seed(0)
    model = NeoBERTLMHead(NeoBERTConfig.tiny())
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 2 * 4 + 1
    for m in linears:
        assert m.weight.abs().max() <= 0.02 and m.weight.abs().max() > 0.019
        assert m.bias is None or torch.equal(m.bias, torch.zeros_like(m.bias))
    emb = model.model.encoder
    assert emb.padding_idx == 0
    assert emb.weight.abs().max() <= 0.02 and emb.weight.abs().max() > 0.019
    # as published: uniform init overwrites nn.Embedding's zeroed padding row
    assert emb.weight[0].abs().max() > 0 and emb.weight[0].abs().max() <= 0.02
    norms = [m for m in model.modules() if isinstance(m, torch.nn.RMSNorm)]
    assert len(norms) == 2 * 2 + 1 and all(torch.equal(n.weight, torch.ones_like(n.weight)) for n in norms)


def test_padding_row_gets_no_gradient(tiny_model, packer):
    batch = packer([torch.tensor([101, 0, 0, 2000, 102])])
    tiny_model.train()
    tiny_model(**batch, labels=batch["input_ids"]).loss.backward()
    grad = tiny_model.model.encoder.weight.grad
    assert torch.equal(grad[0], torch.zeros_like(grad[0])) and grad[2000].abs().max() > 0


def test_activation_checkpointing_gives_the_same_gradients(random_docs, packer):
    batch = packer(random_docs)
    labels = torch.where(torch.arange(len(batch["input_ids"])) % 3 == 0, batch["input_ids"], -100)
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = NeoBERTLMHead(NeoBERTConfig.tiny(activation_checkpointing=checkpointing)).train()
        model(**batch, labels=labels).loss.backward()
        grads.append([p.grad for p in model.parameters()])
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(*grads))


def test_backend_selection_on_cpu():
    assert select_backend("cpu") == "sdpa"
    assert select_backend(torch.device("cpu"), "sdpa") == "sdpa"
    for name in ("flash_attn", "torch_varlen"):
        with pytest.raises(ValueError, match="needs CUDA"):
            select_backend("cpu", name)
    with pytest.raises(ValueError, match="unknown attention backend"):
        select_backend("cpu", "flex")
    assert NeoBERTLMHead(NeoBERTConfig.tiny(num_hidden_layers=1)).backend == "sdpa"


def test_bad_inputs_are_refused_with_a_fix(tiny_model, random_docs, packer):
    batch = packer(random_docs)
    with pytest.raises(ValueError, match="int32"):
        tiny_model(**{**batch, "cu_seqlens": batch["cu_seqlens"].long()})
    with pytest.raises(ValueError, match="needs cu_seqlens"):
        tiny_model(batch["input_ids"])
    with pytest.raises(ValueError, match="rise from 0"):
        tiny_model(**{**batch, "cu_seqlens": batch["cu_seqlens"][:-1]})
    with pytest.raises(ValueError, match="max_seqlen"):
        tiny_model(**{**batch, "max_seqlen": 5000})
    ids = random_docs[3][None]
    with pytest.raises(ValueError, match="attention_mask must be a bool"):
        tiny_model(ids, attention_mask=torch.zeros(ids.shape))
    with pytest.raises(ValueError, match="not cu_seqlens"):
        tiny_model(ids, torch.ones_like(ids))  # the HF habit of passing the mask positionally
