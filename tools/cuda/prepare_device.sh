#!/usr/bin/env bash
# Run on the development machine (no GPU needed) before a GPU session: builds everything
# tools/cuda/device_check.sh needs into .build-device/ (git-ignored; pass it to the device tool's
# `carry`, 64 MiB in all):
#   .build-device/pi0.gz       static, stripped, gzipped release binary (no Swift toolchain needed there)
#   .build-device/cuda-cache/  the kernels compiled by NVRTC for sm_90 and sm_80 (CUBIN + PTX), so the
#                              GPU machine needs the NVIDIA driver only, not NVRTC
# Needs NVRTC here: python3 -m venv /work/venvs/nvrtc && /work/venvs/nvrtc/bin/pip install nvidia-cuda-nvrtc
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PI0_NVRTC_PATH:=$(ls -d /work/venvs/nvrtc/lib/python3*/site-packages/nvidia/cu13/lib 2>/dev/null | head -1)}"
export PI0_NVRTC_PATH
mkdir -p .build-device
rm -rf .build-device/cuda-cache
PI0_CUDA_CACHE_DIR="$PWD/.build-device/cuda-cache" swift build --build-tests
PI0_CUDA_CACHE_DIR="$PWD/.build-device/cuda-cache" swift test --skip-build --filter 'PI0CUDATests.KernelCompileTests/testEveryKernelCompilesCleanlyForSm90AndSm80'
ls .build-device/cuda-cache/*.cubin >/dev/null || { echo "no kernels compiled (is PI0_NVRTC_PATH set?)" >&2; exit 1; }
swift build -c release --static-swift-stdlib --product pi0
cp "$(swift build -c release --static-swift-stdlib --show-bin-path)/pi0" .build-device/pi0
strip .build-device/pi0
# The carry limit is 64 MiB in all; a static binary with Foundation's ICU data compresses well.
gzip -9 -f .build-device/pi0
du -sh .build-device/pi0.gz .build-device/cuda-cache
[ "$(du -sm .build-device | cut -f1)" -lt 64 ] || echo "warning: .build-device exceeds the 64 MiB carry limit" >&2
echo "ready: run tools/cuda/device_check.sh on the device with carry [\".build-device\"]"
