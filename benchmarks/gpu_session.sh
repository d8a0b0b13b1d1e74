#!/usr/bin/env bash
# The one GPU call: the backend parity check, then the throughput table (under 8 minutes, compiles
# included: gpu_train.py's --budget-s skips the rows that no longer fit). First, here:
#   bash benchmarks/gpu_carry.sh
# then, through the device tool, from the repository root:
#   run(command="bash benchmarks/gpu_session.sh", carry=["out/sample", ".whl"], timeout_s=540)
# Outputs: $OUT/card.txt, $OUT/gpu_parity.txt, $OUT/gpu_train.txt (OUT defaults to out/gpu).
set -uo pipefail
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
export PYTHONPATH=. PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=.:/tmp/site
fi
mds=()
[ -f out/sample/manifest.json ] && mds=(--mds out/sample)
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"
} 2>&1 | tee "$OUT/card.txt"
timeout 90 python3 benchmarks/gpu_parity.py 2>&1 | tee "$OUT/gpu_parity.txt"
parity=${PIPESTATUS[0]}
timeout 370 python3 benchmarks/gpu_train.py --budget-s 300 "${mds[@]}" 2>&1 | tee "$OUT/gpu_train.txt"
train=${PIPESTATUS[0]}
echo "gpu_parity exit $parity, gpu_train exit $train"
exit $((parity || train))
