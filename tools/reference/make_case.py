#!/usr/bin/env python
"""Make one golden π0 case with LeRobot 0.6.1 at tiny, command-line dimensions.

    /work/venvs/lerobot/bin/python tools/reference/make_case.py --out DIR --case NAME --seed S [dims...]

Steps: build `PI0Policy(PI0Config)` with the tiny sizes (tiny_pi0.tiny_lerobot), fill it with seeded
random weights, save `model.safetensors` with the real LeRobot key names (`model.` prefix, token
embedding only as `…paligemma.lm_head.weight`, BF16 tensors when --dtype bfloat16) and
`config.json` (LeRobot's own `_save_pretrained`), then load the folder back with
`PI0Policy.from_pretrained`, run `sample_actions` on seeded inputs and store the inputs and the
intermediates (record.py). Also writes `pi0_dims.json` (structure of the shipped fixtures) and
`README.md`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from case_readme import write_readme  # noqa: E402
from record import record_sample_actions  # noqa: E402
from tiny_pi0 import (EXPERT_HEADS_KEY, OVERRIDE_KEYS, dims_json, dims_json_pi05, load_policy, make_config,  # noqa: E402
                      policy_module, random_state_dict, tiny_lerobot)

DEFAULTS = dict(vlm_width=64, vlm_depth=2, vlm_mlp=128, expert_width=32, expert_depth=2, expert_mlp=64,
                num_heads=8, num_kv_heads=1, head_dim=16, vision_hidden=32, vision_layers=2, vision_heads=4,
                vision_intermediate=64, patch_size=14, image_size=56, vocab_size=1024)


def parse_args(argv=None, policy: str = "pi0", doc: str = __doc__):
    """Command line of make_case.py; π0.5 (make_pi05_case.py) has --max-action-dim and no --state-dims."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="case folder to create")
    ap.add_argument("--case", required=True, help=f"case name stored in {policy}_dims.json")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--notes", default="", help="one-paragraph description (README + pi0_dims.json)")
    for k, v in DEFAULTS.items():
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=v)
    ap.add_argument("--expert-heads", type=int, default=None,
                    help="expert query heads if not --num-heads (same KV heads and head_dim)")
    ap.add_argument("--chunk-size", type=int, default=50)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--cams", type=int, default=1)
    ap.add_argument("--cam-masks", default=None,
                    help="per batch row, per camera validity, rows separated by ';' e.g. '1,1;1,0' "
                         "(default all valid); a masked camera's image row is filled with -1")
    ap.add_argument("--lang-len", type=int, default=8)
    ap.add_argument("--lang-valid", default=None, help="valid tokens per row, e.g. '8,5' (default all)")
    if policy == "pi05":
        ap.add_argument("--max-action-dim", type=int, default=32, help="PI05Config.max_action_dim (noise width)")
    else:
        ap.add_argument("--state-dims", type=int, default=14, help="non-zero leading state dims (rest padding)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    return ap.parse_args(argv)


def make_inputs(a, seed: int, pi05: bool = False) -> tuple[dict[str, torch.Tensor], dict]:
    """Seeded sample_actions arguments. π0.5: no state, noise [B, chunk, max_action_dim], and
    `img_masks` in the info is per camera, then per row (the shipped π0.5 pi05_dims.json layout)."""
    g = torch.Generator().manual_seed(seed + 1)
    B, s, vocab = a.batch, a.image_size, a.vocab_size
    if a.cam_masks:
        masks = [[bool(int(x)) for x in row.split(",")] for row in a.cam_masks.split(";")]
    else:
        masks = [[True] * a.cams for _ in range(B)]
    valid = [int(x) for x in a.lang_valid.split(",")] if a.lang_valid else [a.lang_len] * B
    if len(masks) != B or any(len(r) != a.cams for r in masks) or len(valid) != B:
        raise SystemExit("--cam-masks / --lang-valid do not match --batch / --cams")
    inp: dict[str, torch.Tensor] = {}
    for c in range(a.cams):
        img = torch.rand(B, 3, s, s, generator=g) * 2 - 1
        m = torch.tensor([masks[b][c] for b in range(B)])
        img[~m] = -1.0  # what PI0Policy._preprocess_images feeds for a missing camera
        inp[f"image_{c}"], inp[f"img_mask_{c}"] = img, m
    tokens = torch.zeros(B, a.lang_len, dtype=torch.int64)
    lmask = torch.zeros(B, a.lang_len, dtype=torch.bool)
    for b, n in enumerate(valid):
        tokens[b, :n] = torch.randint(3, vocab, (n,), generator=g)
        tokens[b, 0] = 2  # Gemma BOS, as the PaliGemma tokenizer emits
        lmask[b, :n] = True
    inp["lang_tokens"], inp["lang_masks"] = tokens, lmask
    if pi05:
        inp["noise"] = torch.randn(B, a.chunk_size, a.max_action_dim, generator=g)
        info = {"batch": B, "num_cameras": a.cams, "img_masks": [[masks[b][c] for b in range(B)] for c in range(a.cams)],
                "lang_len": a.lang_len, "lang_valid_per_row": valid}
        return inp, info
    state = torch.zeros(B, 32)
    state[:, : a.state_dims] = torch.randn(B, a.state_dims, generator=g)
    inp["state"] = state
    inp["noise"] = torch.randn(B, a.chunk_size, 32, generator=g)
    info = {"batch": B, "num_cameras": a.cams, "img_masks": masks, "lang_len": a.lang_len,
            "lang_valid_per_row": valid, "state_nonzero_dims": a.state_dims}
    return inp, info


def main(argv=None, policy: str = "pi0", script: str = "make_case.py", doc: str = __doc__) -> None:
    """Builds one case; `policy="pi05"` is make_pi05_case.py (LeRobot's PI05Policy)."""
    a = parse_args(argv, policy, doc)
    if a.threads:
        torch.set_num_threads(a.threads)
    pi05 = policy == "pi05"
    ov = {k: getattr(a, k) for k in OVERRIDE_KEYS}
    if a.expert_heads is not None:
        ov[EXPERT_HEADS_KEY] = a.expert_heads
    out: Path = a.out
    out.mkdir(parents=True, exist_ok=True)
    bf16 = a.dtype == "bfloat16"

    module = policy_module(policy)
    policy_cls = module.PI05Policy if pi05 else module.PI0Policy
    config = make_config(ov, a.cams, a.dtype, a.chunk_size, a.steps, policy,
                         max_action_dim=a.max_action_dim if pi05 else 32, tokenizer_max_length=a.lang_len)
    with tiny_lerobot(ov, module):
        model = policy_cls(config)
    sd = random_state_dict(model, a.seed, bf16)
    model.load_state_dict(sd, strict=True)  # proves every name and shape matches LeRobot's model
    stored = {k: v.to(torch.bfloat16 if bf16 else torch.float32).contiguous()
              for k, v in sd.items() if not k.endswith("language_model.embed_tokens.weight")}
    save_file(stored, out / "model.safetensors", metadata={"format": "pt"})
    config._save_pretrained(out)

    inputs, info = make_inputs(a, a.seed, pi05)
    save_file(inputs, out / "inputs.safetensors", metadata={"format": "pt"})
    notes = a.notes or f"batch {a.batch}, {a.cams} camera(s), dtype {a.dtype}"
    if pi05:
        dims = dims_json_pi05(a.case, a.seed, notes, ov, a.dtype, a.chunk_size, a.steps, info,
                              a.max_action_dim, a.lang_len)
    else:
        dims = dims_json(a.case, a.seed, notes, ov, a.dtype, a.chunk_size, a.steps, info)
    (out / f"{policy}_dims.json").write_text(json.dumps(dims, indent=2))

    # Outputs come from the checkpoint as LeRobot loads it, not from the in-memory model.
    loaded, _ = load_policy(out)
    for k, v in loaded.state_dict().items():
        if not torch.equal(v.float(), sd[k].float()):
            raise SystemExit(f"reloaded weight differs: {k}")
    actions, outs = record_sample_actions(loaded.model, inputs, a.cams, a.seed)
    state = () if pi05 else (inputs["state"],)
    again = loaded.model.sample_actions([inputs[f"image_{c}"] for c in range(a.cams)],
                                        [inputs[f"img_mask_{c}"] for c in range(a.cams)],
                                        inputs["lang_tokens"], inputs["lang_masks"], *state,
                                        noise=inputs["noise"])
    if not torch.equal(again, actions):
        raise SystemExit("sample_actions is not repeatable")
    if not torch.isfinite(actions).all():
        raise SystemExit("non-finite actions")
    save_file(outs, out / "outputs.safetensors", metadata={"format": "pt"})

    command = f"/work/venvs/lerobot/bin/python tools/reference/{script} " + shlex.join(
        argv if argv is not None else sys.argv[1:])
    write_readme(out / "README.md", a.case, notes, command, inputs, outs, policy=loaded if pi05 else None)
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"{out}: {len(stored)} weight tensors, {len(outs)} outputs, {size / 1e6:.2f} MB, "
          f"|actions|max={actions.abs().max().item():.4f}")


if __name__ == "__main__":
    main()
