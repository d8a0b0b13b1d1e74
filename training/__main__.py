"""`python -m training [train] --config FILE [--set key=value ...]` · `export CKPT OUT_DIR` ·
`pppl CKPT --data OUT` · `plot PATH [PATH ...]` ·
`glue CKPT --task NAME|all [--grid [bs=…,lr=…,wd=…]] [--set key=value ...]` ·
`embed CKPT OUT_DIR [--pooling mean|cls|max]` · `mteb MODEL --tasks A,B | --benchmark NAME`.

Under torchrun (`torchrun --nproc_per_node N -m training --config …`) every rank runs `train`.
"""

from __future__ import annotations

import argparse
import logging
import sys


def _train(args) -> int:
    from training import config
    from training.loop import StopRun, Trainer

    cfg = config.load(args.config, args.set)
    try:
        Trainer(cfg).train()
    except StopRun as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _export(args) -> int:
    import torch

    from training.hf.export import export

    try:
        out, counts = export(args.checkpoint, args.out_dir, getattr(torch, args.dtype) if args.dtype else None,
                             tokenizer=args.tokenizer)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"exported step {counts['step']} ({counts['tokens']:,} tokens) -> {out} [config.json, model.safetensors, "
          "modeling code, tokenizer, README.md]")
    return 0


def _pppl(args) -> int:
    from training.config import PLLConfig
    from training.pppl import score, table

    try:
        pll = PLLConfig(positions=args.positions, max_documents=args.max_docs, batch_tokens=args.batch_tokens)
        result, path = score(args.checkpoint, args.data, pll, args.seed, args.context, args.cache_dir, args.device,
                             args.output)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"pseudo-perplexity of {result['label']} on the held-out split of {args.data}: {result['windows']:,} "
          f"windows of <= {result['context_length']:,} tokens, {pll.positions} positions per range, seed {args.seed}")
    print(table(result))
    print(path)
    return 0


def _positions(value: str) -> int | str:
    if value == "all" or value.isdigit():
        return value if value == "all" else int(value)
    raise argparse.ArgumentTypeError(f"expected 'all' or a count of positions per range, got {value!r}")


def _plot(args) -> int:
    from training.plot import plot_paths

    try:
        written = plot_paths(args.paths, args.out)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


def _glue(args) -> int:
    from training.glue.run import run

    try:
        run(args.checkpoint, args.task, args.train_file, args.validation_file, args.grid, args.set, args.config)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _embed(args) -> int:
    import torch

    from training.embed import write

    try:
        out, counts = write(args.checkpoint, args.out_dir, args.pooling, args.normalize, args.max_seq_length,
                            getattr(torch, args.dtype) if args.dtype else None, tokenizer=args.tokenizer)
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"sentence-transformers model of step {counts['step']} ({counts['tokens']:,} tokens, {args.pooling} "
          f"pooling{', normalized' if args.normalize else ''}) -> {out}; load it with "
          f"SentenceTransformer({str(out)!r}, trust_remote_code=True)")
    return 0


def _mteb(args) -> int:
    from training.mteb_eval import run, table, tasks_named

    try:
        tasks = tasks_named(args.tasks.split(",") if args.tasks else None, args.benchmark)
        scores = run(args.model, tasks, args.output, args.batch_size, args.device, args.name)
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(table(scores))
    print(f"mteb results: {args.output}/results/")
    return 0


def _eval_parsers(sub) -> None:
    from neobert.pooling import POOLINGS

    e = sub.add_parser("embed", help="a sentence-transformers model of a checkpoint (for `mteb`)")
    e.add_argument("checkpoint", help="RUN_DIR (newest checkpoint) or RUN_DIR/checkpoints/step_NNNNNNNN")
    e.add_argument("out_dir")
    e.add_argument("--pooling", choices=POOLINGS, default="mean", help="how token states become one vector")
    e.add_argument("--normalize", action="store_true", help="append a Normalize module (unit-length vectors)")
    e.add_argument("--max-seq-length", type=int, default=None, help="truncate inputs; default the model's max_length")
    e.add_argument("--dtype", choices=["float32", "bfloat16"], default=None)
    e.add_argument("--tokenizer", default=None, help="tokenizer.json to use if the manifest's is not found here")
    m = sub.add_parser("mteb", help="score a sentence-transformers model with mteb (the [eval] extra)")
    m.add_argument("model", help="an `embed` output folder (or any sentence-transformers model)")
    m.add_argument("--tasks", default=None, help="comma-separated mteb task names, e.g. STSBenchmark,Banking77Classification")
    m.add_argument("--benchmark", default=None, help='an mteb benchmark instead, e.g. "MTEB(eng, v2)"')
    m.add_argument("--output", default="mteb", help="results folder (mteb's layout; tasks found there are not rerun)")
    m.add_argument("--name", default=None, help="model name in the results; default the folder's name")
    m.add_argument("--batch-size", type=int, default=32)
    m.add_argument("--device", default=None, help="default: cuda if available, else cpu")


def _glue_parser(sub) -> None:
    g = sub.add_parser("glue", help="fine-tune and evaluate on GLUE tasks (training/configs/glue/TASK.yaml)")
    g.add_argument("checkpoint", help="RUN_DIR, RUN_DIR/checkpoints/step_N, or an exported Hugging Face folder")
    g.add_argument("--task", required=True, help="cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli, snli, or all")
    g.add_argument("--train-file", help="local CSV/JSON/parquet with run_glue.py's columns (with --validation-file)")
    g.add_argument("--validation-file")
    g.add_argument("--grid", nargs="?", const="all", default=None, metavar="bs=N,lr=X,wd=X",
                   help="alone: the whole grid of the config; with a value: that one point (default: the YAML's point)")
    g.add_argument("--config", help="a YAML to use instead of training/configs/glue/TASK.yaml (one task)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set epochs=3 --set point.lr=1e-5")


class _TqdmHandler(logging.Handler):
    """The one log output: through tqdm, so messages never break the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        msg = self.format(record)
        tqdm.write(record.getMessage() if record.name == "training" and record.levelno == logging.INFO else msg,
                   file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("train", "export", "pppl", "plot", "glue", "embed", "mteb", "-h", "--help"):
        argv.insert(0, "train")
    parser = argparse.ArgumentParser(prog="python -m training", description="NeoBERT pretraining on MDS shards")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train (stage 1 or 2) from a YAML config; the default command")
    t.add_argument("--config", required=True, help="YAML stage file, e.g. training/configs/quickstart.yaml")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set data.root=out/sample --set steps=100")
    e = sub.add_parser("export", help="a folder that loads with stock transformers (trust_remote_code)")
    e.add_argument("checkpoint", help="RUN_DIR (newest checkpoint) or RUN_DIR/checkpoints/step_NNNNNNNN")
    e.add_argument("out_dir")
    e.add_argument("--dtype", choices=["float32", "bfloat16"], default=None)
    e.add_argument("--tokenizer", default=None, help="tokenizer.json to use if the manifest's is not found here")
    q = sub.add_parser("pppl", help="pseudo-perplexity per position range (each position masked alone)")
    q.add_argument("checkpoint", help="RUN_DIR (newest checkpoint), RUN_DIR/checkpoints/step_NNNNNNNN, or a "
                                      "published-layout folder (config.json + model.safetensors)")
    q.add_argument("--data", required=True, help="pipeline output OUT whose held-out split is scored")
    q.add_argument("--positions", type=_positions, default=256,
                   help="'all' scored positions (one forward row each), or N sampled per range per window")
    q.add_argument("--max-docs", type=int, default=256, help="documents of the held-out split to score")
    q.add_argument("--context", type=int, default=None, help="window length; default the model's max_length")
    q.add_argument("--seed", type=int, default=1234, help="which positions are sampled (validation.seed's default)")
    q.add_argument("--batch-tokens", type=int, default=32768, help="tokens per forward (bounds memory)")
    q.add_argument("--cache-dir", default=None, help="local copy of a remote --data")
    q.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    q.add_argument("--output", default=None, help="result JSON; default RUN_DIR/pppl/step_NNNNNNNN.json")
    p = sub.add_parser("plot", help="PNG plots of a run's curves, and pseudo-perplexity against position")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="run folders (training curves), checkpoints or pppl result JSONs (one line each)")
    p.add_argument("--out", default=None, help="the by-position PNG; default RUN_DIR/plots/ of the first")
    _glue_parser(sub)
    _eval_parsers(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", handlers=[_TqdmHandler()])
    logging.getLogger("training").setLevel(logging.INFO)
    return {"train": _train, "export": _export, "pppl": _pppl, "plot": _plot, "glue": _glue, "embed": _embed,
            "mteb": _mteb}[args.command](args)


def neobert_demo(argv: list[str] | None = None) -> None:
    """The `neobert` command: `python -m neobert` with the bundled bert-base-uncased tokenizer."""
    from neobert.__main__ import main as demo
    from shards.layout import BERT_TOKENIZER

    demo(argv, default_tokenizer=str(BERT_TOKENIZER))


if __name__ == "__main__":
    sys.exit(main())
