#!/usr/bin/env python
"""Re-run a golden case folder through LeRobot and compare with its stored outputs.

    /work/venvs/lerobot/bin/python tools/reference/run_case.py CASE_DIR [CASE_DIR ...] [--threads N]

Loads `model.safetensors` + `config.json` with LeRobot's own `PI0Policy.from_pretrained` (at the
tiny sizes of `pi0_dims.json`, see tiny_pi0.py; `PI05Policy` for a folder with `pi05_dims.json`),
feeds `inputs.safetensors` to `sample_actions`, records the same intermediates as make_case.py and prints, per stored
tensor, the max |diff|, the relative L2 error and whether it is bit-identical. Exit status 1 if the
actions differ by more than --tol (absolute).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import record_sample_actions  # noqa: E402
from tiny_pi0 import load_policy  # noqa: E402


def compare(name: str, got: torch.Tensor, want: torch.Tensor) -> tuple[float, float, bool]:
    if got.shape != want.shape:
        raise SystemExit(f"{name}: shape {tuple(got.shape)} != stored {tuple(want.shape)}")
    if got.dtype != want.dtype:
        raise SystemExit(f"{name}: dtype {got.dtype} != stored {want.dtype}")
    if want.dtype == torch.bool:
        n = int((got != want).sum())
        return float(n), float(n), n == 0
    g, w = got.double(), want.double()
    diff = (g - w).abs().max().item() if g.numel() else 0.0
    rel = ((g - w).norm() / w.norm().clamp_min(1e-30)).item()
    return diff, rel, torch.equal(got, want)


def run(case_dir: Path, verbose: bool) -> float:
    policy, dims = load_policy(case_dir)
    inputs = load_file(case_dir / "inputs.safetensors")
    stored = load_file(case_dir / "outputs.safetensors")
    _, outs = record_sample_actions(policy.model, inputs, dims["inputs"]["num_cameras"], dims["seed"],
                                    rmsnorm_in=stored.get("rmsnorm_in"), adarms_in=stored.get("adarms_in"),
                                    adarms_cond_in=stored.get("adarms_cond_in"))
    worst_actions = 0.0
    missing = sorted(set(stored) - set(outs))
    extra = sorted(set(outs) - set(stored))
    if extra:
        print(f"  (recorded but not stored: {extra})")
    for name in stored:
        if name not in outs:
            continue
        diff, rel, same = compare(name, outs[name], stored[name])
        if name == "actions":
            worst_actions = diff
        if verbose or not same or name == "actions":
            print(f"  {name:32s} max|d|={diff:.3e} relL2={rel:.3e} {'identical' if same else ''}")
    if missing:
        print(f"  (not recomputed: {missing})")
    return worst_actions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+", type=Path)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--tol", type=float, default=1e-5, help="max allowed |actions diff|")
    ap.add_argument("-v", "--verbose", action="store_true", help="print identical tensors too")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    bad = False
    for case in args.cases:
        print(f"{case}: torch {torch.__version__}, {torch.get_num_threads()} threads")
        d = run(case, args.verbose)
        print(f"{case}: actions max|diff| = {d:.3e}")
        bad |= d > args.tol
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
