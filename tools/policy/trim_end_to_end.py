"""Trim shared/fixtures/policy/end_to_end/io.safetensors to what the Swift tests read.

    /work/venvs/st/bin/python tools/policy/trim_end_to_end.py SRC_io.safetensors DST_io.safetensors

The top camera holds uint8/255 values, so it is stored as uint8 (exact); everything else is copied.
"""
import sys
import numpy as np
from safetensors.numpy import load_file, save_file

src, dst = sys.argv[1], sys.argv[2]
t = load_file(src)
top = t["image_top_raw"]
u8 = np.round(top * 255).astype(np.uint8)
assert np.array_equal((u8.astype(np.float32) / 255).astype(np.float32), top), "top camera is not uint8/255"
keep = {k: t[k] for k in ["image_wrist_raw", "state_raw", "noise", "lang_tokens", "lang_masks", "state_normalized",
                          "state_padded", "actions_model_padded", "actions"]}
keep["image_top_u8"] = u8
save_file(keep, dst)
