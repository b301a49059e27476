#!/usr/bin/env python3
"""Compares the `actions` tensor of two safetensors files (standard library only: the GPU machine may
have no numpy). Usage: compare_actions.py GOT.safetensors EXPECTED.safetensors --rel-l2 TOL --pcc MIN
Prints one line (rel-L2, PCC, verdict); exit status 0 when within tolerance, 1 when not, 2 on bad input.
Tolerances as the repository's parity tests: float32 rel-L2 <= 2e-5 and PCC >= 0.99999; bf16 1e-2 and 0.999."""
import argparse, json, math, struct, sys


def read_actions(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    if "actions" not in header:
        raise ValueError(f"{path}: no 'actions' tensor")
    info = header["actions"]
    if info["dtype"] != "F32":
        raise ValueError(f"{path}: actions are {info['dtype']}, expected F32")
    start, end = info["data_offsets"]
    raw = data[8 + n + start:8 + n + end]
    return info["shape"], struct.unpack(f"<{len(raw) // 4}f", raw)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("got"); p.add_argument("expected")
    p.add_argument("--rel-l2", type=float, required=True); p.add_argument("--pcc", type=float, required=True)
    a = p.parse_args()
    try:
        gs, g = read_actions(a.got)
        es, e = read_actions(a.expected)
    except (OSError, ValueError, KeyError) as err:
        print(f"FAIL {err}"); return 2
    if gs != es:
        print(f"FAIL shape {gs} vs expected {es}"); return 1
    if any(not math.isfinite(x) for x in g):
        print("FAIL non-finite actions"); return 1
    d = math.sqrt(sum((x - y) ** 2 for x, y in zip(g, e)))
    r = math.sqrt(sum(y * y for y in e))
    rel = d / r if r else d
    mg, me = sum(g) / len(g), sum(e) / len(e)
    cov = sum((x - mg) * (y - me) for x, y in zip(g, e))
    vg = sum((x - mg) ** 2 for x in g); ve = sum((y - me) ** 2 for y in e)
    pcc = cov / math.sqrt(vg * ve) if vg > 0 and ve > 0 else (1.0 if d == 0 else 0.0)
    ok = rel <= a.rel_l2 and pcc >= a.pcc
    print(f"{'ok  ' if ok else 'FAIL'} rel-L2 {rel:.3e} (<= {a.rel_l2:g}) PCC {pcc:.7f} (>= {a.pcc:g}) shape {gs}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
