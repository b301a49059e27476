#!/usr/bin/env bash
# The one prepared GPU check (docs/CUDA.md, "On a GPU machine"). Runs on the device machine in the
# repository root, after tools/cuda/prepare_device.sh ran on the development machine and .build-device/
# was carried; needs no Swift toolchain (a static `pi0`) and no NVRTC (the kernels are precompiled).
#   run(command: "bash tools/cuda/device_check.sh", carry: [".build-device"], timeout_s: 540)
# Steps, most important first, each under its own timeout and all under one budget (PI0_DEVICE_BUDGET_S,
# default 500 s), so a hang cannot eat the session's device time; a step that no longer fits is skipped
# and logged. Results in $OUT (summary.txt first).
#   1. ops        `pi0 cuda-check`: every kernel against the reference backend (cuBLAS, then fallback GEMM)
#   2. fixtures   tiny_1cam (float32) and tiny_3cam_bf16 through `pi0 run --backend cuda --inputs` (eager),
#                 actions compared with LeRobot's by compare_actions.py; every graph mode through
#                 `pi0 cuda-check --fixtures DIR` when the binary has it
#   3. bench      a full-size random bf16 checkpoint: `pi0 bench --backend cuda --graph none|full|loop`
#                 (eager; whole sampleActions captured as one graph; only the denoise loop captured),
#                 1 and 3 cameras, each also pipelined (`--pipeline`: two observations in flight, the
#                 next one's uploads on the second stream) when the binary has it; float32 eager; the
#                 cpu backend for scale
#   4. lerobot    LeRobot's eager bf16 on the GPU, when torch with CUDA and lerobot are installed
# `--graph none|full|loop` is the mode flag of `pi0 bench` (SamplingEngine: the first call of a shape warms
# eagerly, later ones are captured once and replayed); a binary without it gets the eager runs only.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
BIN=${PI0_BIN:-$PWD/.build-device/pi0}
CKPT=${PI0_BENCH_CKPT:-/tmp/pi0-random-bf16}
BUDGET=${PI0_DEVICE_BUDGET_S:-500}
export PI0_CUDA_CACHE_DIR=${PI0_CUDA_CACHE_DIR:-$PWD/.build-device/cuda-cache}
FIXTURES=Tests/PI0CUDATests/Fixtures
log() { echo "[$(date -u +%H:%M:%S) +${SECONDS}s] $*" | tee -a "$OUT/summary.txt"; }
step() {  # step NAME SECONDS COMMAND...: output to $OUT/NAME.txt, status to the summary; skipped past the budget
  local name=$1 secs=$2; shift 2
  local left=$((BUDGET - SECONDS))
  if [ "$left" -lt 20 ]; then log "$name: skipped (budget of ${BUDGET} s spent)"; return 124; fi
  [ "$secs" -gt "$left" ] && secs=$left
  local t0=$SECONDS
  timeout "$secs" "$@" >"$OUT/$name.txt" 2>&1
  local rc=$?
  log "$name: rc=$rc in $((SECONDS - t0)) s$([ $rc = 124 ] && echo " (timed out at $secs s)")"
  return $rc
}

log "device check start (budget ${BUDGET} s)"
{ nvidia-smi; nvidia-smi -q | grep -iE "driver version|cuda version|product name"; } >"$OUT/nvidia-smi.txt" 2>&1
grep -iE "driver version|cuda version|product name" "$OUT/nvidia-smi.txt" | head -3 | while read -r l; do log "  $l"; done
# cuBLAS from the system or a Python install's NVIDIA wheels (optional: without it the fallback GEMM runs).
for lib in libcublas.so.13 libcublas.so.12 libcublas.so; do
  p=$(timeout 30 find /usr /opt /root -maxdepth 9 -name "$lib" 2>/dev/null | head -1)
  if [ -n "$p" ]; then export PI0_CUBLAS_PATH=$p; log "cuBLAS: $p"; break; fi
done
[ -z "${PI0_CUBLAS_PATH:-}" ] && log "cuBLAS: not found (fallback GEMM kernels)"
if [ ! -x "$BIN" ] && [ -f "$BIN.gz" ]; then gunzip -c "$BIN.gz" >/tmp/pi0 && chmod +x /tmp/pi0 && BIN=/tmp/pi0; fi
[ -x "$BIN" ] || { log "missing $BIN: run tools/cuda/prepare_device.sh and carry .build-device"; exit 2; }
"$BIN" --version >"$OUT/version.txt" 2>&1 || true
ls "$PI0_CUDA_CACHE_DIR" >"$OUT/kernel-cache.txt" 2>&1 || log "no kernel cache at $PI0_CUDA_CACHE_DIR (the kernels need NVRTC here)"
has() { "$BIN" "$1" --help 2>&1 | grep -q -- "$2"; }

# 1. The op table (CUDASelfTest through pi0 cuda-check), with cuBLAS and with the fallback GEMM.
if "$BIN" --help 2>&1 | grep -q "cuda-check"; then
  step ops 90 "$BIN" cuda-check
  step ops_fallback_gemm 60 env PI0_CUDA_NO_CUBLAS=1 "$BIN" cuda-check
  grep -h "^FAIL" "$OUT/ops.txt" "$OUT/ops_fallback_gemm.txt" 2>/dev/null | head -20 | while read -r l; do log "  $l"; done
else
  log "ops: pi0 has no cuda-check subcommand in this build (skipped)"
fi

# 2. The fixture models end to end on the device. `pi0 run --inputs` (raw mode) samples once, eagerly
# (it takes --graph but a single call is the engine's warm-up, so nothing is captured): it checks the
# model on device tensors. The graph modes on the fixtures run when `pi0 cuda-check --fixtures DIR`
# exists (the same fixtures through SamplingEngine none/full/loop, several calls each); until then
# the op table's graph check and the bench's captured runs are the device's graph checks.
PY=$(command -v python3 || true)
for fx in tiny_1cam tiny_3cam_bf16; do
  tol="--rel-l2 2e-5 --pcc 0.99999"; [[ $fx == *bf16 ]] && tol="--rel-l2 1e-2 --pcc 0.999"
  for mode in none; do
    name=fixture_${fx}_$mode
    step "$name" 60 "$BIN" run --checkpoint "$FIXTURES/$fx" --inputs "$FIXTURES/$fx/inputs.safetensors" \
      --output "$OUT/$name.safetensors" --force --steps 10 --backend cuda || continue
    if [ -n "$PY" ]; then
      # shellcheck disable=SC2086
      log "  $fx graph $mode: $("$PY" tools/cuda/compare_actions.py "$OUT/$name.safetensors" "$FIXTURES/$fx/outputs.safetensors" $tol 2>&1)"
    else
      log "  $fx graph $mode: no python3 here; compare $OUT/$name.safetensors with tools/cuda/compare_actions.py"
    fi
  done
done

if has cuda-check "--fixtures"; then
  step fixtures_graph 180 "$BIN" cuda-check --fixtures "$FIXTURES"
else
  log "fixtures_graph: pi0 cuda-check has no --fixtures in this build (graph modes on the fixtures skipped)"
fi

# 3. Timings on a full-size random bf16 checkpoint (~7 GB on local disk).
[ -f "$CKPT/model.safetensors" ] || step write_checkpoint 150 "$BIN" write-random-checkpoint "$CKPT" --precision bfloat16
if has bench "cuda"; then
  BENCH_MODES="none"
  has bench "--graph" && BENCH_MODES="none full loop" || log "bench: pi0 bench has no --graph here (eager only)"
  PIPE=(); has bench "--pipeline" && PIPE=(--pipeline) || log "bench: pi0 bench has no --pipeline here (sequential only)"
  for mode in $BENCH_MODES; do
    graph=(); [ "$mode" != none ] && graph=(--graph "$mode")
    step "bench_cuda_bf16_1cam_$mode" 120 "$BIN" bench --checkpoint "$CKPT" --backend cuda "${graph[@]}" "${PIPE[@]}" --cameras 1 --runs 5 --json
  done
  for mode in $BENCH_MODES; do
    graph=(); [ "$mode" != none ] && graph=(--graph "$mode")
    step "bench_cuda_bf16_3cam_$mode" 120 "$BIN" bench --checkpoint "$CKPT" --backend cuda "${graph[@]}" "${PIPE[@]}" --cameras 3 --runs 5 --json
  done
  step bench_cuda_f32_1cam_none 120 "$BIN" bench --checkpoint "$CKPT" --backend cuda --precision float32 --cameras 1 --runs 3 --json
  step bench_cuda_bf16_1cam_profile 120 "$BIN" bench --checkpoint "$CKPT" --backend cuda --cameras 1 --runs 2 --profile
else
  log "bench_cuda: pi0 bench has no --backend cuda in this build (skipped)"
fi
step bench_cpu_bf16_1cam 90 "$BIN" bench --checkpoint "$CKPT" --backend cpu --cameras 1 --runs 1 --json

# 4. LeRobot's eager bf16 on the GPU, when PyTorch + LeRobot are installed and the script takes --device.
PY=${PI0_LEROBOT_PYTHON:-python3}
if [ -f tools/reference/bench_lerobot.py ] && grep -q -- "--device" tools/reference/bench_lerobot.py \
   && "$PY" -c "import torch, lerobot; assert torch.cuda.is_available()" >/dev/null 2>&1; then
  step lerobot_bf16 150 "$PY" tools/reference/bench_lerobot.py --dtype bfloat16 --cams 1 --runs 3 --device cuda
else
  log "lerobot: skipped (needs torch with CUDA + lerobot, and bench_lerobot.py --device)"
fi
log "device check done"
