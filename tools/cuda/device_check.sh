#!/usr/bin/env bash
# The one prepared GPU check (docs/CUDA.md). Runs on the device machine in the repository root, after
# tools/cuda/prepare_device.sh ran here and .build-device/ was carried. Budget: ~8 minutes in all,
# every step under its own timeout so a hang cannot eat the session's device time. Results in $OUT.
#   run(command: "bash tools/cuda/device_check.sh", carry: [".build-device"], timeout_s: 540)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
BIN=${PI0_BIN:-$PWD/.build-device/pi0}
CKPT=${PI0_BENCH_CKPT:-/tmp/pi0-random-bf16}
export PI0_CUDA_CACHE_DIR=${PI0_CUDA_CACHE_DIR:-$PWD/.build-device/cuda-cache}
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/summary.txt"; }
step() {  # step NAME SECONDS COMMAND...: output to $OUT/NAME.txt, status to the summary
  local name=$1 secs=$2; shift 2
  local t0=$SECONDS
  timeout "$secs" "$@" >"$OUT/$name.txt" 2>&1
  local rc=$?
  log "$name: rc=$rc in $((SECONDS - t0)) s"
  return $rc
}

log "device check start"
{ nvidia-smi; nvidia-smi -q | grep -iE "driver version|cuda version|product name"; } >"$OUT/nvidia-smi.txt" 2>&1
# cuBLAS / NVRTC from a Python install's NVIDIA wheels, when the machine has them (optional: the backend
# falls back to its own GEMM kernel, and the kernels are precompiled in the carried cache).
for lib in libcublas.so.13 libcublas.so.12 libcublas.so; do
  p=$(timeout 30 find /usr /opt /root -maxdepth 9 -name "$lib" 2>/dev/null | head -1)
  if [ -n "$p" ]; then export PI0_CUBLAS_PATH=$p; log "cuBLAS: $p"; break; fi
done
[ -z "${PI0_CUBLAS_PATH:-}" ] && log "cuBLAS: not found (fallback GEMM kernels)"
if [ ! -x "$BIN" ] && [ -f "$BIN.gz" ]; then gunzip -c "$BIN.gz" >/tmp/pi0 && chmod +x /tmp/pi0 && BIN=/tmp/pi0; fi
[ -x "$BIN" ] || { log "missing $BIN: run tools/cuda/prepare_device.sh and carry .build-device"; exit 2; }
"$BIN" --version >"$OUT/version.txt" 2>&1 || true

# 1. The op table against the CPU definitions (pi0 cuda-check, wired by the lead to CUDASelfTest.run).
if "$BIN" --help 2>&1 | grep -q "cuda-check"; then
  step ops 90 "$BIN" cuda-check
  step ops_fallback_gemm 60 env PI0_CUDA_NO_CUBLAS=1 "$BIN" cuda-check
else
  log "ops: pi0 has no cuda-check subcommand in this build (skipped)"
fi

# 2. A full-size random bf16 checkpoint (~7 GB) on local disk.
[ -f "$CKPT/model.safetensors" ] || step write_checkpoint 150 "$BIN" write-random-checkpoint "$CKPT" --dtype bfloat16

# 3. Timings: the CUDA backend (host-pointer version: transfers per op), then the CPU backend, 1 camera.
if "$BIN" bench --help 2>&1 | grep -q cuda; then
  step bench_cuda_bf16 180 "$BIN" bench --checkpoint "$CKPT" --backend cuda --runs 3 --json
  step bench_cuda_f32 120 "$BIN" bench --checkpoint "$CKPT" --backend cuda --precision float32 --runs 2 --json
else
  log "bench_cuda: pi0 bench has no --backend cuda in this build (skipped)"
fi
step bench_cpu_bf16 90 "$BIN" bench --checkpoint "$CKPT" --backend cpu --runs 1 --json

# 4. LeRobot's eager bf16 on the GPU, when PyTorch + LeRobot are installed and the script takes --device.
PY=${PI0_LEROBOT_PYTHON:-python3}
if [ -f tools/reference/bench_lerobot.py ] && grep -q -- "--device" tools/reference/bench_lerobot.py \
   && "$PY" -c "import torch, lerobot; assert torch.cuda.is_available()" >/dev/null 2>&1; then
  step lerobot_bf16 150 "$PY" tools/reference/bench_lerobot.py --dtype bfloat16 --cams 1 --runs 3 --device cuda
else
  log "lerobot: skipped (needs torch with CUDA + lerobot, and bench_lerobot.py --device)"
fi
log "device check done"
