#!/usr/bin/env python3
"""Golden MessagePack fixtures for Tests/MessagePackTests, made with openpi-client's own encoder.

Provenance: openpi_client.msgpack_numpy.packb (openpi-client 0.1.2, msgpack 1.2.4, numpy 1.26.4).
Each case writes `<name>.msgpack` (the exact bytes the Python client would send) and one entry in
`golden.json` that describes the decoded value in a plain JSON form the Swift test rebuilds
independently: arrays as {"ndarray": dtype, "shape": [...], "hex": raw C-order bytes}, numpy scalars
as {"npgeneric": dtype, "value": ...}, bytes as {"bytes": hex}, tuples/lists as JSON lists, maps as
lists of [key, value] pairs (key order matters for byte-exact re-encoding), big unsigned ints as
{"uint": "decimal"}, floats as {"double": repr} so the bit pattern survives JSON.

Usage: /work/venvs/openpi/bin/python tools/server/make_msgpack_golden.py Tests/MessagePackTests/Fixtures
"""
import json
import math
import pathlib
import struct
import sys

import msgpack
import numpy as np
from openpi_client import msgpack_numpy

rng = np.random.default_rng(1234)


def describe(v):
    """Plain-JSON description of a Python value as msgpack_numpy.packb sees it."""
    if isinstance(v, np.ndarray):
        return {"ndarray": v.dtype.str, "shape": list(v.shape), "hex": v.tobytes().hex()}
    # Subclasses of Python builtins are packed by msgpack as the builtin (np.float64 is a float).
    if isinstance(v, bool):
        return v
    if isinstance(v, np.generic) and not isinstance(v, (float, int, str, bytes)):
        return {"npgeneric": v.dtype.str, "value": describe(v.item())}
    if v is None:
        return None
    if isinstance(v, int):
        if v > 2**63 - 1:
            return {"uint": str(v)}
        return {"int": str(v)}
    if isinstance(v, float):
        # Hex of the IEEE-754 double: exact, and JSON-safe for inf/nan.
        return {"double": struct.pack(">d", v).hex()}
    if isinstance(v, str):
        return {"str": v}
    if isinstance(v, (bytes, bytearray)):
        return {"bytes": bytes(v).hex()}
    if isinstance(v, (list, tuple)):
        return {"list": [describe(x) for x in v]}
    if isinstance(v, dict):
        return {"map": [[describe(k), describe(x)] for k, x in v.items()]}
    raise TypeError(type(v))


def img(shape):
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


# Small images keep the fixtures small; layout (HWC vs CHW) and dtypes match the real clients.
cases = {
    "libero": {
        "observation/image": img((8, 8, 3)),
        "observation/wrist_image": img((8, 8, 3)),
        "observation/state": rng.standard_normal(8).astype(np.float32),
        "prompt": "put the bowl on the plate",
    },
    "aloha": {
        "state": rng.standard_normal(14).astype(np.float64),
        "images": {
            "cam_high": img((3, 4, 5)),
            "cam_low": img((3, 4, 5)),
            "cam_left_wrist": np.zeros((3, 4, 5), np.uint8),
            "cam_right_wrist": img((3, 4, 5)),
        },
        "prompt": "fold the towel",
    },
    "droid": {
        "observation/exterior_image_1_left": img((4, 6, 3)),
        "observation/wrist_image_left": img((4, 6, 3)),
        "observation/joint_position": rng.standard_normal(7),
        "observation/gripper_position": np.array([0.25]),
        "prompt": "open the drawer",
    },
    "scalars": {
        "f32": np.float32(1.5), "f64": np.float64(-2.25), "f16": np.float16(0.5),
        "i8": np.int8(-7), "i16": np.int16(-300), "i32": np.int32(70000), "i64": np.int64(-(2**40)),
        "u8": np.uint8(200), "u16": np.uint16(60000), "u32": np.uint32(4_000_000_000),
        "u64": np.uint64(2**64 - 1), "b": np.bool_(True),
    },
    "dtypes": {
        "f2": np.array([1.0, -0.5, 65504.0, 6.1e-5], np.float16),
        "f4": np.array([[1.0, -2.0], [3.5, float("inf")]], np.float32),
        "f8": np.array([math.pi, -0.0, 1e300], np.float64),
        "i1": np.array([-128, 127, 0], np.int8), "i2": np.array([-32768, 32767], np.int16),
        "i4": np.array([-(2**31), 2**31 - 1], np.int32), "i8": np.array([-(2**63), 2**63 - 1], np.int64),
        "u1": np.array([0, 255], np.uint8), "u2": np.array([65535], np.uint16),
        "u4": np.array([2**32 - 1], np.uint32), "u8": np.array([2**64 - 1], np.uint64),
        "b1": np.array([True, False, True], np.bool_),
        "f4_big_endian": np.array([1.0, 2.0], dtype=">f4"),
        "i4_big_endian": np.array([-2, 3], dtype=">i4"),
        "f4_fortran": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
    },
    "shapes": {
        "empty": np.zeros((0,), np.float32), "empty2d": np.zeros((0, 3), np.float32),
        "zero_d": np.array(3.0, np.float32), "zero_d_u8": np.array(7, np.uint8),
        "three_d": np.arange(24, dtype=np.int32).reshape(2, 3, 4),
    },
    "plain": {
        "none": None, "t": True, "f": False,
        "ints": [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1,
                 -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63)],
        "floats": [0.0, -0.0, 1.5, 1e-310, float("inf"), float("-inf"), 3.141592653589793],
        "strings": ["", "a" * 31, "b" * 32, "c" * 255, "d" * 256, "héllo wörld ✓ 日本語 🤖"],
        "bytes": [b"", b"\x00\x01\xff", bytes(range(256)) + b"x"],
        "tuple": (1, "two", 3.0), "nested": [[1, [2, [3, []]]], {"k": (4, 5)}, {}],
        "long_list": list(range(20)), "big_map": {f"k{i}": i for i in range(17)},
        "int_keys": {1: "one", -2: "minus two"},
    },
}
cases["nested_obs"] = {"observation": {"images": cases["aloha"]["images"], "state": cases["aloha"]["state"]},
                      "list_of_arrays": [np.ones(2, np.float32), (np.zeros(1, np.int64),)],
                      "prompt": "🦾 pick"}


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "Tests/MessagePackTests/Fixtures")
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"generator": "openpi_client.msgpack_numpy.packb",
                "versions": {"msgpack": ".".join(map(str, msgpack.version)), "numpy": np.__version__}, "cases": {}}
    for name, obs in cases.items():
        data = msgpack_numpy.packb(obs)
        # The Python client must read its own bytes back (sanity of the fixture itself).
        msgpack_numpy.unpackb(data, strict_map_key=False)
        (out / f"{name}.msgpack").write_bytes(data)
        manifest["cases"][name] = describe(obs)
    # The protocol doc's byte example (docs/PROTOCOL.md).
    example = {"state": np.array([1.5, 2.0], np.float32), "prompt": "hi", "s": np.float32(1.0)}
    manifest["doc_example_hex"] = msgpack_numpy.packb(example).hex()

    (out / "golden.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {len(cases)} cases to {out} ({total} bytes)")


if __name__ == "__main__":
    main()
