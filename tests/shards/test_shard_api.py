"""The shard API on the sample's output: windows, the two collators, and the tokenizer check."""

import json
from collections import defaultdict

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from streaming import StreamingDataset
from torch.utils.data import DataLoader

from shards import manifest as manifest_io
from shards.api import Masking, PackedMLM, PaddedMLM, open_dataset
from shards.layout import BERT_TOKENIZER, join
from shards.manifest import Vocab

CONTEXT = 128


def stored_documents(root: str) -> dict[str, np.ndarray]:
    """Every training document as stored, read with a stock StreamingDataset per bucket."""
    docs = {}
    for bucket in manifest_io.read(root)["buckets"].values():
        if bucket["documents"]:
            ds = StreamingDataset(local=join(root, bucket["path"]), batch_size=1)
            docs.update((s["id"], s["input_ids"]) for s in ds)
            del ds
    return docs


def windows_by_id(ds) -> dict[str, list[np.ndarray]]:
    out = defaultdict(list)
    for w in ds:
        out[w["id"]].append(w["input_ids"])
    return out


def test_split_windows_cover_every_document_once_in_order(sample_output):
    docs = stored_documents(sample_output)
    ds = open_dataset(sample_output, tokenizer=BERT_TOKENIZER, context_length=CONTEXT, shuffle=False)
    got = windows_by_id(ds)
    del ds
    assert set(got) == set(docs)
    assert any(len(ws) > 1 for ws in got.values()), "the case under test: documents longer than the context"
    for doc_id, ws in got.items():
        assert all(len(w) <= CONTEXT and w[0] == 101 and w[-1] == 102 for w in ws)
        content = np.concatenate([w[1:-1] for w in ws])
        np.testing.assert_array_equal(content, docs[doc_id][1:-1])


def test_truncate_keeps_only_the_first_window(sample_output):
    docs = stored_documents(sample_output)
    ds = open_dataset(sample_output, tokenizer=BERT_TOKENIZER, context_length=CONTEXT, long_docs="truncate",
                      shuffle=False)
    got = windows_by_id(ds)
    del ds
    assert any(len(d) > CONTEXT for d in docs.values())
    for doc_id, ws in got.items():
        assert len(ws) == 1
        np.testing.assert_array_equal(ws[0][1:-1], docs[doc_id][1:-1][: CONTEXT - 2])


def test_padded_batches_hold_the_packed_tokens_and_labels(sample_output):
    ds = open_dataset(sample_output, tokenizer=BERT_TOKENIZER, context_length=CONTEXT, seed=7)
    vocab = ds.vocab
    masking = Masking(rate=0.3, replace=(0.8, 0.1, 0.1))
    windows = list(ds)  # one epoch; the next one is shuffled otherwise
    del ds
    packed = list(DataLoader(windows, batch_size=8, collate_fn=PackedMLM(vocab, masking, seed=5)))
    padded = list(DataLoader(windows, batch_size=8, collate_fn=PaddedMLM(vocab, masking, seed=5, pad_to=CONTEXT)))
    assert len(packed) == len(padded) > 10
    assert any(int(p["cu_seqlens"].diff().min()) < CONTEXT for p in packed), "the case under test: padding"
    for p, q in zip(packed, padded):
        lengths = p["cu_seqlens"].diff().tolist()
        assert q["input_ids"].shape == (len(lengths), CONTEXT) and q["attention_mask"].sum(1).tolist() == lengths
        for row, (a, b) in enumerate(zip(p["cu_seqlens"][:-1].tolist(), p["cu_seqlens"][1:].tolist())):
            n = b - a
            assert torch.equal(q["input_ids"][row, :n], p["input_ids"][a:b])
            assert torch.equal(q["labels"][row, :n], p["labels"][a:b])
            assert torch.equal(p["position_ids"][a:b], torch.arange(n))
            assert (q["input_ids"][row, n:] == vocab.pad).all() and (q["labels"][row, n:] == -100).all()
    labels = torch.cat([p["labels"] for p in packed])
    ids = torch.cat([p["input_ids"] for p in packed])
    chosen = labels != -100
    assert 0.25 < chosen.float().mean() < 0.31  # rate of the non-special tokens (specials are ~2%)
    assert (ids[chosen] == vocab.mask).float().mean() > 0.7
    assert (ids[chosen] == labels[chosen]).any() and (ids[chosen] != vocab.mask).any()
    assert not torch.isin(labels[chosen], torch.tensor(vocab.special)).any()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=1, max_size=8), st.integers(0, 2**32 - 1), st.sampled_from([None, 64]))
def test_padded_is_the_packed_batch_laid_out_in_rows(lengths, seed, pad_to):
    vocab = Vocab(pad=0, cls=101, sep=102, mask=103, special=(0, 100, 101, 102, 103), size=30522)
    rng = np.random.default_rng(seed)
    batch = [{"input_ids": np.array([101, *rng.integers(999, 30522, n), 102], dtype=np.uint16)} for n in lengths]
    masking = Masking(rate=0.4)
    p, q = PackedMLM(vocab, masking, seed)(batch), PaddedMLM(vocab, masking, seed, pad_to=pad_to)(batch)
    keep = q["attention_mask"].bool()
    assert q["input_ids"].shape == (len(lengths), pad_to or max(lengths) + 2)
    assert keep.sum(1).tolist() == [n + 2 for n in lengths]
    assert torch.equal(q["input_ids"][keep], p["input_ids"]) and torch.equal(q["labels"][keep], p["labels"])
    assert (q["input_ids"][~keep] == 0).all() and (q["labels"][~keep] == -100).all()


def test_masks_follow_the_key_and_move_on_with_each_batch_of_a_persistent_worker(sample_output):
    """Masks are keyed (seed, stream, batch index) as in the trainer; a persistent DataLoader
    worker's index runs on across epochs, so epoch 2 does not repeat epoch 1's masks."""
    vocab = Vocab(pad=0, cls=101, sep=102, mask=103, special=(0, 100, 101, 102, 103), size=30522)
    batch = [{"input_ids": np.array([101, *np.random.default_rng(0).integers(999, 30522, 200), 102])}]
    chosen = lambda c: c(batch)["labels"] != -100  # noqa: E731
    c = PackedMLM(vocab, Masking(), seed=1)
    first, second = chosen(c), chosen(c)
    assert torch.equal(first, chosen(PackedMLM(vocab, Masking(), seed=1))) and not torch.equal(first, second)
    ds = open_dataset(sample_output, tokenizer=BERT_TOKENIZER, context_length=CONTEXT, shuffle=False)
    loader = DataLoader(ds, batch_size=4, num_workers=1, persistent_workers=True,
                        collate_fn=PackedMLM(ds.vocab, Masking(), seed=3))
    epochs = [next(iter(loader)) for _ in range(2)]
    del loader, ds
    assert torch.equal(epochs[0]["cu_seqlens"], epochs[1]["cu_seqlens"]), "the case under test: the same windows"
    assert not torch.equal(epochs[0]["labels"], epochs[1]["labels"])


def test_same_seed_same_masks_other_seed_other_masks(sample_output):
    def first_batch(seed):
        ds = open_dataset(sample_output, tokenizer=BERT_TOKENIZER, context_length=CONTEXT, shuffle=False)
        batch = next(iter(DataLoader(ds, batch_size=4, collate_fn=PackedMLM(ds.vocab, Masking(), seed=seed))))
        del ds
        return batch

    a, b, c = first_batch(1), first_batch(1), first_batch(2)
    assert torch.equal(a["labels"], b["labels"]) and torch.equal(a["input_ids"], b["input_ids"])
    assert not torch.equal(a["labels"], c["labels"])


def test_a_different_tokenizer_file_is_refused(sample_output, tmp_path):
    other = tmp_path / "tokenizer.json"
    spec = json.loads(BERT_TOKENIZER.read_text())
    vocab = spec["model"]["vocab"]
    vocab["hello"], vocab["world"] = vocab["world"], vocab["hello"]  # same size and specials, other ids
    other.write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="was tokenized with 'bert-base-uncased'.*re-tokenize"):
        open_dataset(sample_output, tokenizer=other)
    with pytest.raises(ValueError, match="no tokenizer.json"):
        open_dataset(sample_output, tokenizer=tmp_path / "missing.json")


@pytest.mark.parametrize("kwargs, match", [
    ({"long_docs": "drop"}, "long_docs"),
    ({"context_length": 2}, "context_length"),
    ({"mixture": "stage3"}, "mixture 'stage3' not found"),
])
def test_bad_settings_say_what_to_change(sample_output, kwargs, match):
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        open_dataset(sample_output, tokenizer=BERT_TOKENIZER, **kwargs)


def test_bad_masking_is_refused():
    with pytest.raises(ValueError, match="rate"):
        Masking(rate=0.0)
    with pytest.raises(ValueError, match="summing to 1"):
        Masking(replace=(0.8, 0.1, 0.2))


@pytest.fixture
def s3_root(sample_output, monkeypatch):
    """The sample's output uploaded to a local S3 server (moto), with the endpoint in the environment."""
    moto_server = pytest.importorskip("moto.server")
    import s3fs

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_ENDPOINT_URL": url, "S3_ENDPOINT_URL": url}.items():
        monkeypatch.setenv(key, value)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": url})
    fs.mkdir("shards-test")
    for rel in ("manifest.json", "mixtures", "mds/lt1024", "mds/1024to2048", "mds/ge2048", "mds/val"):
        fs.put(join(sample_output, rel), f"shards-test/out/{rel}", recursive=True)
    yield "s3://shards-test/out"
    server.stop()


def test_a_remote_output_streams_the_same_windows(s3_root, sample_output, tmp_path):
    ds = open_dataset(s3_root, tokenizer=BERT_TOKENIZER, context_length=CONTEXT, shuffle=False,
                      cache_dir=str(tmp_path / "cache"))
    remote = windows_by_id(ds)
    del ds
    local = windows_by_id(open_dataset(sample_output, tokenizer=BERT_TOKENIZER, context_length=CONTEXT, shuffle=False))
    assert remote.keys() == local.keys() and len(remote) > 10
    assert all(np.array_equal(a, b) for k in local for a, b in zip(remote[k], local[k], strict=True))
