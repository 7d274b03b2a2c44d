#!/usr/bin/env bash
# The GPU checks in one go, for a bare GPU machine whose python3 already has torch,
# pytorch-lightning and torchmetrics (hydra-core, omegaconf and antlr4 travel in $SITE).
# Writes its logs and JSON reports to $OUT (default: ./gpu_check).
#
#   SITE=.gpu_site OUT=/tmp/gpu bash tests/gpu/device_check.sh
#   CHECKS="train_ipe_liif train_liif" bash tests/gpu/device_check.sh   # only these
#
# Checks, in this order (the GPU training step first):
#   train_ipe_liif      bench train, IPE-LIIF, fp32, then bf16 autocast: naive and fast eager,
#                       fast with fused Adam, compiled (default) and compiled with CUDA graphs
#                       (reduce-overhead); samples/s at batch 16, host syncs per step, and GPU
#                       utilisation while each runs back to back (nvidia-smi);
#   train_liif          the same for LIIF, eager (naive, fast, fast with fused Adam);
#   embedded            the embedded default (`python run.py trainer=gpu`), timed;
#   embedded_compiled   the same with compile=reduce-overhead;
#   gpu_tests           the GPU tests (decoders, metrics, bf16-mixed training, compiled step, NaN
#                       check, bf16 prediction);
#   decode, memory      the decode benchmark and the peak GPU memory of whole-image upsampling.
# The checks together stay under BUDGET_S seconds (default 570, for a 10-minute run): a check
# starts only if half its time limit is left, and runs at most until the budget is spent.
# nvidia-smi samples the GPU every 200 ms in the background ($OUT/gpu_samples.csv);
# $OUT/summary.txt has each check's utilisation and the benchmarks' numbers.
#
# TRAIN_ARGS and DEVICE let the bench checks run anywhere, e.g. a smoke test on a CPU:
#   DEVICE=cpu TRAIN_ARGS="--batch 2 --lr-side 16 --repeats 1 --warmup 1 --allocator skip" \
#     CHECKS="train_ipe_liif train_liif" bash tests/gpu/device_check.sh
set -uo pipefail
OUT=${OUT:-gpu_check}
BUDGET_S=${BUDGET_S:-570}
CHECKS=${CHECKS:-train_ipe_liif train_liif embedded embedded_compiled gpu_tests decode memory}
DEVICE=${DEVICE:-cuda}
TRAIN_ARGS=${TRAIN_ARGS:---repeats 20 --warmup 3 --utilisation-s 3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="${SITE:+$PWD/$SITE:}$PWD"
PY=${PYTHON:-python3}
status=0
printf 'check\tstart\tend\texit\n' > "$OUT/checks.tsv"
wanted() { [[ " $CHECKS " == *" $1 "* ]]; }
step() {  # step NAME LIMIT_S COMMAND...: run within the budget, log to $OUT/NAME.log
  local name=$1 limit=$2
  shift 2
  local left=$((BUDGET_S - SECONDS))
  if [ $left -lt $((limit / 2)) ]; then
    echo "== $name: skipped, ${left} s of the ${BUDGET_S} s budget left (needs up to ${limit} s)"
    printf '%s\t-\t-\tskipped\n' "$name" >> "$OUT/checks.tsv"
    return
  fi
  local cut=
  [ $left -lt "$limit" ] && limit=$left && cut=" (cut to the budget left)"
  echo "== $name (at most $limit s$cut): $*"
  local start=$SECONDS began
  began=$(date +%s.%N)
  timeout "$limit" "$@" 2>&1 | tr '\r' '\n' > "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  printf '%s\t%s\t%s\t%s\n' "$name" "$began" "$(date +%s.%N)" "$rc" >> "$OUT/checks.tsv"
  echo "== $name: exit $rc after $((SECONDS - start)) s$([ "$rc" -eq 124 ] && echo "$cut")"
  tail -n 15 "$OUT/$name.log"
  [ "$rc" -eq 0 ] || status=1
}
sampler=
if command -v nvidia-smi > /dev/null; then
  nvidia-smi -L
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,nounits \
    -lms 200 > "$OUT/gpu_samples.csv" 2>/dev/null &
  sampler=$!
  trap 'kill $sampler 2>/dev/null' EXIT
fi
$PY -c "import torch, pytorch_lightning, torchmetrics, hydra; print('torch', torch.__version__,
'lightning', pytorch_lightning.__version__, 'torchmetrics', torchmetrics.__version__,
'hydra', hydra.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else '')"

for precision in fp32 bf16; do  # one process each: a time-out keeps the other's report
  # shellcheck disable=SC2086  # TRAIN_ARGS is a list of options
  wanted train_ipe_liif && step "train_ipe_liif_$precision" 180 $PY -m ipe_lightning.bench train \
    --device "$DEVICE" --model ipe_liif --precision $precision $TRAIN_ARGS \
    --variants fast+fused fast+fused+compile fast+fused+compile=reduce-overhead \
    --json "$OUT/bench_train_ipe_liif_$precision.json"
done
# shellcheck disable=SC2086
wanted train_liif && step train_liif 90 $PY -m ipe_lightning.bench train \
  --device "$DEVICE" --model liif --precision fp32 bf16 $TRAIN_ARGS --variants fast+fused \
  --json "$OUT/bench_train_liif.json"
embedded() {  # embedded NAME LIMIT_S OVERRIDES...: the embedded default, plain progress every 5 s
  local name=$1 limit=$2
  shift 2
  rm -rf "/tmp/$name"  # a fresh run, not a resume of an earlier one (resume=auto)
  step "$name" "$limit" $PY run.py trainer=gpu callbacks.progress_bar.plain=true \
    callbacks.progress_bar.every_s=5 "$@" hydra.run.dir="/tmp/$name"
  cp "/tmp/$name/metrics.json" "$OUT/${name}_metrics.json" 2>/dev/null
  cp "/tmp/$name/run.log" "$OUT/${name}_run.log" 2>/dev/null
}
wanted embedded && embedded embedded 120
wanted embedded_compiled && embedded embedded_compiled 240 compile=reduce-overhead
wanted gpu_tests && step gpu_tests 240 $PY -m pytest -q -m gpu tests/gpu -p no:cacheprovider
wanted decode && step bench_decode 80 $PY -m ipe_lightning.bench decode --device cuda \
  --precision fp32 bf16 --repeats 5 --json "$OUT/bench_decode_cuda.json"
wanted memory && step bench_memory 150 $PY -m ipe_lightning.bench memory --device cuda \
  --json "$OUT/bench_memory_cuda.json"
wanted memory && step bench_memory_bf16 150 $PY -m ipe_lightning.bench memory --device cuda \
  --precision bf16 --json "$OUT/bench_memory_cuda_bf16.json"

[ -n "$sampler" ] && kill "$sampler" 2>/dev/null && wait "$sampler" 2>/dev/null
$PY - "$OUT" << 'EOF' | tee "$OUT/summary.txt"
import csv, json, re, statistics, sys
from datetime import datetime
from pathlib import Path

out = Path(sys.argv[1])
samples = []  # (epoch seconds, utilisation %, memory MiB) from nvidia-smi
if (out / "gpu_samples.csv").exists():
    for row in list(csv.reader((out / "gpu_samples.csv").open()))[1:]:
        try:
            when = datetime.strptime(row[0].strip(), "%Y/%m/%d %H:%M:%S.%f").timestamp()
            samples.append((when, float(row[1]), float(row[2])))
        except (ValueError, IndexError):
            continue
print("check                 exit     s  GPU util mean/median %  max memory MiB")
for check in csv.DictReader((out / "checks.tsv").open(), delimiter="\t"):
    if check["exit"] == "skipped":
        print(f"{check['check']:<22}skipped")
        continue
    start, end = float(check["start"]), float(check["end"])
    inside = [s for s in samples if start <= s[0] <= end]
    util = [s[1] for s in inside]
    shown = f"{statistics.mean(util):5.1f} / {statistics.median(util):5.1f}" if util else "-"
    memory = f"{max(s[2] for s in inside):.0f}" if inside else "-"
    print(f"{check['check']:<22}{check['exit']:>4}{end - start:>6.0f}  {shown:<22}{memory:>15}")
for name in ("embedded", "embedded_compiled"):  # steps/s between the plain progress lines
    log = out / f"{name}_run.log"
    stamped = re.compile(r"^\[([\d-]+ [\d:,]+)\].*\[train\] step (\d+)")
    points = [m.groups() for m in map(stamped.match, log.read_text().splitlines()) if m] if log.exists() else []
    times = [(datetime.strptime(t, "%Y-%m-%d %H:%M:%S,%f").timestamp(), int(s)) for t, s in points]
    if len(times) >= 3:  # from the second line on: past start-up and compilation
        (t0, s0), (t1, s1) = times[1], times[-1]
        print(f"{name}: {(s1 - s0) / (t1 - t0):.1f} steps/s from step {s0} to {s1}")
for report in sorted(out.glob("bench_train_*.json")):
    for key, case in json.loads(report.read_text())["cases"].items():
        print(f"{key} (batch {case['batch']}):")
        for name, row in case.items():
            if isinstance(row, dict) and "samples_per_s" in row:
                util = (row.get("gpu_utilisation") or {}).get("mean_pct", "-")
                print(
                    f"  {name:<36}{row['samples_per_s']:>9.1f} samples/s"
                    f"  x{row.get('speedup_over_fast', '-'):<6} vs fast"
                    f"  syncs/step {row.get('host_syncs_per_step', '-'):<4} util {util}%"
                    + (f"  compile {row['compile_s']} s" if "compile_s" in row else "")
                )
EOF
exit $status
