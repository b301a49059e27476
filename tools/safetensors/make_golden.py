#!/usr/bin/env python3
"""Golden safetensors files written by the REAL Python `safetensors` package, for Tests/SafeTensorsTests.

Usage (from the repository root):
    python3 -m venv /work/venvs/st && /work/venvs/st/bin/pip install safetensors numpy ml_dtypes
    /work/venvs/st/bin/python tools/safetensors/make_golden.py Tests/SafeTensorsTests/Fixtures

Writes, into the output folder:
  golden_dtypes.safetensors  one tensor per supported dtype (+ scalar, empty and unicode-named tensors),
                             saved with safetensors.numpy.save_file and __metadata__;
  golden_bf16.safetensors    BF16 tensors (numpy has no bfloat16: the bits come from ml_dtypes, an
                             independent round-to-nearest-even implementation, and the file is written by
                             safetensors' own serializer `safetensors.serialize` (TensorSpec API, safetensors >= 0.7));
  golden_expected.json       for every tensor: dtype, shape and the expected values. Floats are given as
                             IEEE bit patterns (hex strings of the stored element) so NaN/-0/subnormals
                             compare exactly; integers as decimal strings (exact for 64-bit values), bools as booleans; for the
                             bf16 file also the float32 inputs and the bf16 bits ml_dtypes rounded them to,
                             which the Swift writer's BFloat16Conversion.fromFloat must reproduce.
Reruns reproduce the files except the order of __metadata__ keys in golden_dtypes (the Rust writer keeps
metadata in a HashMap), which changes bytes but not content.
"""
import json
import os
import sys

import ml_dtypes
import numpy as np
import safetensors
from safetensors.numpy import save_file

out_dir = sys.argv[1] if len(sys.argv) > 1 else "Tests/SafeTensorsTests/Fixtures"
os.makedirs(out_dir, exist_ok=True)

specials32 = [0.0, -0.0, 1.0, -2.5, 3.1415927, 1e-40, -1e-45, 3.4028235e38, float("inf"), float("-inf"), float("nan")]
tensors = {
    "f64": np.array([[0.1, -0.0], [1e308, 5e-324], [float("inf"), float("nan")]], dtype=np.float64),  # 3x2
    "f32": np.array(specials32 + [1.5], dtype=np.float32).reshape(3, 4),
    "f16": np.array([0.0, -0.0, 1.0, -2.0, 65504.0, 6e-08, 6.1035e-05, 0.333, float("inf"), float("nan")],
                    dtype=np.float16),
    "i64": np.array([0, -1, 2**63 - 1, -(2**63), 123456789012345], dtype=np.int64),
    "i32": np.array([[0, -1], [2**31 - 1, -(2**31)]], dtype=np.int32),
    "i16": np.array([0, -1, 32767, -32768, 1234], dtype=np.int16),
    "i8": np.array([0, -1, 127, -128, 42, 7], dtype=np.int8).reshape(2, 3),
    "u8": np.array([0, 1, 255, 128, 1, 0, 7], dtype=np.uint8),
    "bool": np.array([[True, False, True], [False, False, True]], dtype=np.bool_),
    "scalar_f32": np.array(2.75, dtype=np.float32),          # shape []
    "empty_f32": np.zeros((0, 3), dtype=np.float32),         # shape [0, 3], 0 bytes
    "layers.0.self_attn.q_proj.weight": np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5,
    "unicode_名前_é": np.array([1, 2, 3], dtype=np.int32),
}
metadata = {"format": "pt", "note": "golden file for PI0-Swift; quotes \" and \\ and ünïcödé"}
save_file(tensors, os.path.join(out_dir, "golden_dtypes.safetensors"), metadata=metadata)


def bits_hex(a):
    a = np.ascontiguousarray(a)
    u = {8: np.uint64, 4: np.uint32, 2: np.uint16}[a.dtype.itemsize]
    return [format(int(x), "x") for x in a.view(u).reshape(-1)]


def describe(a):
    entry = {"dtype": {"float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64", "int32": "I32",
                       "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}[str(a.dtype)],
             "shape": list(a.shape)}
    if a.dtype.kind == "f":
        entry["bits"] = bits_hex(a)
    elif a.dtype.kind == "b":
        entry["bools"] = [bool(x) for x in a.reshape(-1)]
    else:
        entry["ints"] = [str(int(x)) for x in a.reshape(-1)]  # strings: exact for 64-bit values
    return entry


expected = {"golden_dtypes.safetensors": {"metadata": metadata,
                                          "tensors": {k: describe(v) for k, v in tensors.items()}}}

# BF16: inputs chosen to exercise rounding (ties to even both ways, carry into the exponent, overflow to
# inf, subnormals, NaN, signed zero).
bf16_inputs = np.array([
    1.0, -1.0, 0.0, -0.0, 3.1415927, 1.00390625, 1.01171875, 1.0039063, 1.9999999, -65504.0,
    3.4028235e38, 3.3961776e38, 1e-40, -9.2e-41, 1.17549435e-38, 2.0**-133, float("inf"), float("-inf"),
    float("nan"), 0.1, 0.2, 0.3, 123456.78, -7.0e-3,
], dtype=np.float32)
bf16 = bf16_inputs.astype(ml_dtypes.bfloat16)
bf16_bits = bf16.view(np.uint16)
rng = np.random.default_rng(1234)
random_f32 = rng.standard_normal(64).astype(np.float32) * np.float32(10.0)
random_bits = random_f32.astype(ml_dtypes.bfloat16).view(np.uint16)
ones = np.ones(2, dtype=np.float32)
keep_alive = [np.ascontiguousarray(bf16_bits), np.ascontiguousarray(random_bits), ones]


def spec(dtype, shape, arr):
    # safetensors >= 0.7 takes raw pointers through TensorSpec; `keep_alive` holds the buffers.
    return safetensors.TensorSpec(dtype=dtype, shape=shape, data_ptr=arr.ctypes.data, data_len=arr.nbytes)


bf16_tensors = {
    "rounding": spec("bfloat16", [4, 6], keep_alive[0]),
    "random": spec("bfloat16", [8, 8], keep_alive[1]),
    "ones_f32": spec("float32", [2], ones),
}
with open(os.path.join(out_dir, "golden_bf16.safetensors"), "wb") as f:
    f.write(safetensors.serialize(bf16_tensors, None))
expected["golden_bf16.safetensors"] = {"metadata": {}, "tensors": {
    "rounding": {"dtype": "BF16", "shape": [4, 6], "bits": [format(int(x), "x") for x in bf16_bits],
                 "inputs_f32_bits": bits_hex(bf16_inputs)},
    "random": {"dtype": "BF16", "shape": [8, 8], "bits": [format(int(x), "x") for x in random_bits],
               "inputs_f32_bits": bits_hex(random_f32)},
    "ones_f32": describe(np.ones(2, dtype=np.float32)),
}}

with open(os.path.join(out_dir, "golden_expected.json"), "w", encoding="utf-8") as f:
    json.dump(expected, f, indent=1, ensure_ascii=False, sort_keys=True)
print("safetensors", safetensors.__version__, "numpy", np.__version__, "ml_dtypes", ml_dtypes.__version__)
