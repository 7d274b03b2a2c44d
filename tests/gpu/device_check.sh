#!/usr/bin/env bash
# The GPU checks in one go, for a bare GPU machine whose python3 already has torch,
# pytorch-lightning and torchmetrics (hydra-core, omegaconf and antlr4 travel in $SITE).
# Writes its logs and JSON reports to $OUT (default: ./gpu_check).
#
#   SITE=.gpu_site OUT=/tmp/gpu bash tests/gpu/device_check.sh
#
# 1. the GPU tests (decoders, metrics, bf16-mixed training, bf16 prediction);
# 2. the decode and training-step benchmarks on CUDA, fp32 and bf16 (naive vs fast decoder), and
#    peak GPU memory of whole-image upsampling;
# 3. the embedded default (`python run.py`) with trainer=gpu, timed.
set -uo pipefail
OUT=${OUT:-gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="${SITE:+$PWD/$SITE:}$PWD"
PY=${PYTHON:-python3}
status=0
step() {  # step NAME TIMEOUT_S COMMAND...: run, log to $OUT/NAME.log, remember failures
  local name=$1 limit=$2
  shift 2
  echo "== $name: $*"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | tr '\r' '\n' > "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc after $((SECONDS - start)) s"
  tail -n 15 "$OUT/$name.log"
  [ $rc -eq 0 ] || status=1
}
nvidia-smi -L
$PY -c "import torch, pytorch_lightning, torchmetrics, hydra; print('torch', torch.__version__,
'lightning', pytorch_lightning.__version__, 'torchmetrics', torchmetrics.__version__,
'hydra', hydra.__version__, torch.cuda.get_device_name())"
step gpu_tests 200 $PY -m pytest -q -m gpu tests/gpu -p no:cacheprovider
step bench_decode 80 $PY -m ipe_lightning.bench decode --device cuda --precision fp32 bf16 \
  --repeats 5 --json "$OUT/bench_decode_cuda.json"
step bench_train 80 $PY -m ipe_lightning.bench train --device cuda --precision fp32 bf16 \
  --repeats 10 --warmup 3 --json "$OUT/bench_train_cuda.json"
step bench_memory 150 $PY -m ipe_lightning.bench memory --device cuda \
  --json "$OUT/bench_memory_cuda.json"
step bench_memory_bf16 150 $PY -m ipe_lightning.bench memory --device cuda --precision bf16 \
  --json "$OUT/bench_memory_cuda_bf16.json"
rm -rf /tmp/embedded_gpu  # a fresh run, not a resume of an earlier one (resume=auto)
step embedded_gpu 180 $PY run.py trainer=gpu hydra.run.dir=/tmp/embedded_gpu
cp /tmp/embedded_gpu/metrics.json "$OUT/embedded_gpu_metrics.json" 2>/dev/null
exit $status
