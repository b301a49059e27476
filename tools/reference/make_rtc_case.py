#!/usr/bin/env python3
"""One real-time chunking golden case from an existing tiny case folder (pi0 or pi05), computed by
LeRobot 0.6.1's own `sample_actions` with `rtc_config` enabled (the RTC fixtures' recipe).

    $REF_PY tools/reference/make_rtc_case.py --from CASE_DIR --out OUT_DIR --schedule LINEAR \
        --delay 4 --horizon 12 [--prev-steps 50 --prev-width 32 --max-guidance 10 --batch 1 --seed 7]

CASE_DIR holds model.safetensors, config.json, pi0_dims.json or pi05_dims.json and inputs.safetensors
(a model fixture). The previous chunk is realistic, as in the shipped RTC cases: the tail (rows
chunk−T_prev…, dims :A_prev) of an RTC-off `sample_actions` on the same observation with other noise.
OUT_DIR gets the model files, config.json with `rtc_config`, inputs.safetensors with `noise`,
`rtc_prev_chunk`, `rtc_inference_delay`, `rtc_execution_horizon`, and outputs.safetensors with
`actions` (RTC on) and `actions_no_rtc` (same noise, RTC off). --batch 2 repeats the observation with
different noise per row (one delay and horizon for the batch, as LeRobot takes them).
"""
import argparse
import contextlib
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_pi0 import tiny_lerobot  # noqa: E402


def load(case: Path):
    cfg = json.loads((case / "config.json").read_text())
    if cfg.get("type") == "pi05":
        from lerobot.policies.pi05 import modeling_pi05 as module
        from lerobot.policies.pi05.modeling_pi05 import PI05Policy as Policy
        dims_name = "pi05_dims.json"
    else:
        from lerobot.policies.pi0 import modeling_pi0 as module
        from lerobot.policies.pi0.modeling_pi0 import PI0Policy as Policy
        dims_name = "pi0_dims.json"
    dims = json.loads((case / dims_name).read_text())
    with tiny_lerobot(dims["tiny_overrides"], module=module), contextlib.redirect_stdout(None):
        policy = Policy.from_pretrained(str(case), local_files_only=True)
    policy.eval()
    return policy, cfg, dims_name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--schedule", default="LINEAR", choices=["ZEROS", "ONES", "LINEAR", "EXP"])
    ap.add_argument("--delay", type=int, required=True)
    ap.add_argument("--horizon", type=int, required=True)
    ap.add_argument("--prev-steps", type=int, default=None)
    ap.add_argument("--prev-width", type=int, default=32)
    ap.add_argument("--max-guidance", type=float, default=10.0)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    torch.set_num_threads(1)
    src, out = Path(a.src), Path(a.out)
    policy, cfg, dims_name = load(src)
    from lerobot.configs import RTCAttentionSchedule
    from lerobot.policies.rtc.configuration_rtc import RTCConfig

    model = policy.model
    inputs = load_file(str(src / "inputs.safetensors"))
    b0 = inputs["lang_tokens"].shape[0]
    rep = lambda t: torch.cat([t] * a.batch, dim=0) if b0 == 1 else t  # noqa: E731
    cams = sorted(int(k.split("_")[1]) for k in inputs if k.startswith("image_"))
    images = [rep(inputs[f"image_{c}"]) for c in cams]
    masks = [rep(inputs[f"img_mask_{c}"]) for c in cams]
    tokens, tmask = rep(inputs["lang_tokens"]), rep(inputs["lang_masks"])
    chunk, width = model.config.chunk_size, model.config.max_action_dim
    bsz = tokens.shape[0]
    g = torch.Generator().manual_seed(a.seed)
    noise = torch.randn((bsz, chunk, width), generator=g)
    other = torch.randn((bsz, chunk, width), generator=g)
    args = (images, masks, tokens, tmask) if cfg.get("type") == "pi05" else (images, masks, tokens, tmask, rep(inputs["state"]))

    policy.config.rtc_config = None
    policy.init_rtc_processor()
    with torch.no_grad():
        previous = model.sample_actions(*args, noise=other)
        plain = model.sample_actions(*args, noise=noise)
    t_prev = a.prev_steps or chunk
    prev = previous[:, chunk - t_prev:, :a.prev_width].contiguous().float()

    rtc = RTCConfig(enabled=True, prefix_attention_schedule=RTCAttentionSchedule[a.schedule],
                    max_guidance_weight=a.max_guidance, execution_horizon=a.horizon)
    policy.config.rtc_config = rtc
    policy.init_rtc_processor()
    guided = model.sample_actions(*args, noise=noise, inference_delay=a.delay, prev_chunk_left_over=prev,
                                  execution_horizon=a.horizon)

    out.mkdir(parents=True, exist_ok=True)
    for f in ["model.safetensors", dims_name]:
        shutil.copy(src / f, out / f)
    cfg["rtc_config"] = {"enabled": True, "prefix_attention_schedule": a.schedule, "max_guidance_weight": a.max_guidance,
                         "execution_horizon": a.horizon, "debug": False, "debug_maxlen": 100}
    (out / "config.json").write_text(json.dumps(cfg, indent=4) + "\n")
    ins = {f"image_{c}": images[i].contiguous() for i, c in enumerate(cams)}
    ins.update({f"img_mask_{c}": masks[i].contiguous() for i, c in enumerate(cams)})
    ins.update({"lang_tokens": tokens.contiguous(), "lang_masks": tmask.contiguous(), "noise": noise,
                "rtc_prev_chunk": prev, "rtc_inference_delay": torch.tensor([a.delay], dtype=torch.int64),
                "rtc_execution_horizon": torch.tensor([a.horizon], dtype=torch.int64)})
    if cfg.get("type") != "pi05":
        ins["state"] = rep(inputs["state"]).contiguous()
    save_file(ins, str(out / "inputs.safetensors"))
    save_file({"actions": guided.float().contiguous(), "actions_no_rtc": plain.float().contiguous()},
              str(out / "outputs.safetensors"))
    rel = float((guided - plain).norm() / plain.norm())
    (out / "README.md").write_text(
        f"# {out.name}\n\nReal-time chunking case made by `tools/reference/make_rtc_case.py` with LeRobot 0.6.1 from "
        f"`{src.name}` ({cfg.get('type', 'pi0')}, dtype {cfg.get('dtype')}): schedule {a.schedule}, inference_delay "
        f"{a.delay}, execution_horizon {a.horizon}, previous chunk [{bsz}, {t_prev}, {a.prev_width}] (tail of an RTC-off "
        f"run with other noise), max_guidance_weight {a.max_guidance}, batch {bsz}, noise seed {a.seed}.\n\n"
        f"inputs.safetensors: the model inputs plus `noise`, `rtc_prev_chunk`, `rtc_inference_delay`, "
        f"`rtc_execution_horizon`. outputs.safetensors: `actions` (RTC on) and `actions_no_rtc` (same noise, RTC off); "
        f"rel-L2(actions, actions_no_rtc) = {rel:.3e}.\n")
    print(f"{out}: rel-L2(rtc vs off) {rel:.3e}")


if __name__ == "__main__":
    main()
