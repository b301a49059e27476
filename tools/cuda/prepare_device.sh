#!/usr/bin/env bash
# Run on the development machine (no GPU needed) before a GPU session: builds everything
# tools/cuda/device_check.sh needs into .build-device/ (git-ignored; pass it to the device tool's
# `carry`, 64 MiB in all):
#   .build-device/pi0.gz       static, stripped, gzipped release binary (no Swift toolchain needed there)
#   .build-device/cuda-cache/  the kernels compiled by NVRTC for sm_90 and sm_80 (CUBIN + PTX), so the
#                              GPU machine needs the NVIDIA driver only, not NVRTC
# NVRTC comes from PyPI into .venv-nvrtc (as .ci/run does) unless PI0_NVRTC_PATH is set. The kernels are
# also checked here first: compiled by NVRTC and run on the CPU emulation against the reference backend.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${PI0_NVRTC_PATH:-}" ]; then
  [ -d .venv-nvrtc ] || { python3 -m venv .venv-nvrtc && .venv-nvrtc/bin/pip install -q nvidia-cuda-nvrtc; }
  nvrtc=$(find .venv-nvrtc -name 'libnvrtc.so*' ! -name '*builtins*' | head -1)
  [ -n "$nvrtc" ] || { echo "no libnvrtc in .venv-nvrtc" >&2; exit 1; }
  PI0_NVRTC_PATH="$PWD/$(dirname "$nvrtc")"
fi
export PI0_NVRTC_PATH
mkdir -p .build-device
rm -rf .build-device/cuda-cache
swift build --build-tests
PI0_CUDA_CACHE_DIR="$PWD/.build-device/cuda-cache" swift test --skip-build \
  --filter 'PI0CUDATests.KernelCompileTests|PI0CUDATests.KernelEmulationTests|PI0CUDATests.GraphCaptureTests|PI0CUDATests.FusedNormTests|PI0CUDATests.PipelineStreamTests'
ls .build-device/cuda-cache/*.cubin >/dev/null || { echo "no kernels compiled (is PI0_NVRTC_PATH right?)" >&2; exit 1; }
swift build -c release --static-swift-stdlib --product pi0
cp "$(swift build -c release --static-swift-stdlib --show-bin-path)/pi0" .build-device/pi0
strip .build-device/pi0
# The carry limit is 64 MiB in all; a static binary with Foundation's ICU data compresses well.
gzip -9 -f .build-device/pi0
du -sh .build-device/pi0.gz .build-device/cuda-cache
[ "$(du -sm .build-device | cut -f1)" -lt 64 ] || echo "warning: .build-device exceeds the 64 MiB carry limit" >&2
echo "ready: run tools/cuda/device_check.sh on the device with carry [\".build-device\"]"
