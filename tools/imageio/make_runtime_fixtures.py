#!/usr/bin/env python3
"""Copies the small subset of /work/shared/fixtures/policy that Tests/PI0RuntimeTests needs.

* resize_cases.safetensors: cases 3 (u8 100x300 down-scale), 4 (7x5 up-scale x32), 6 (123x457, the
  float64 truncation quirk, with its [-1,1] output too) and 7 (out-of-range values -> clamp) of
  resize_with_pad/cases.safetensors, tensors copied unchanged (the full file is 16.5 MB; the
  remaining cases are checked by a test that runs only when /work/shared is present).
* the normaliser folder's processor JSONs, stats files and cases.safetensors, unchanged.

Usage: /work/venvs/img/bin/python tools/imageio/make_runtime_fixtures.py [dest]   (pip install safetensors numpy)
"""
import os
import shutil
import sys

from safetensors.numpy import load_file, save_file

SRC = "/work/shared/fixtures/policy"


def main(dest):
    os.makedirs(dest, exist_ok=True)
    full = load_file(os.path.join(SRC, "resize_with_pad", "cases.safetensors"))
    keep = ["in_3", "out_3", "in_4", "out_4", "in_6", "out_6", "out_pm1_6", "in_7", "out_7"]
    save_file({k: full[k] for k in keep}, os.path.join(dest, "resize_cases.safetensors"),
              metadata={"source": "fixtures/policy/resize_with_pad/cases.safetensors (lerobot 0.6.1)"})
    nd = os.path.join(dest, "normalizer")
    os.makedirs(nd, exist_ok=True)
    for f in sorted(os.listdir(os.path.join(SRC, "normalizer"))):
        if f.endswith(".json") and f != "dataset_stats.json" or f.endswith(".safetensors"):
            shutil.copyfile(os.path.join(SRC, "normalizer", f), os.path.join(nd, f))
    for root, _, files in os.walk(dest):
        for f in files:
            print(os.path.getsize(os.path.join(root, f)), os.path.join(root, f))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/PI0RuntimeTests/Fixtures")
