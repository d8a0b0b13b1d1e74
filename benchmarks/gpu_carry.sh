#!/usr/bin/env bash
# Prepare, on this machine, what the GPU session carries for the loader rows of gpu_train.py:
# the bundled sample as MDS shards (out/sample, ignored by git, ~2 MB) and the one wheel they need
# there (.whl/zstd, ignored by git): the GPU machine has no network and no mosaicml-streaming.
# Then: run(command="bash benchmarks/gpu_session.sh", carry=["out/sample", ".whl"], timeout_s=540)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f out/sample/manifest.json ] || uv run refinedweb all --input sample --output out/sample --val-fraction 0.05
rm -rf .whl && mkdir .whl
# The GPU machine runs CPython 3.12 on x86-64; any zstd 1.x has the zstd.decompress the loader calls.
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "zstd>=1.5,<2"
du -sh out/sample .whl/*
