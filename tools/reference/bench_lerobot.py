#!/usr/bin/env python
"""Baseline timings of LeRobot 0.6.1's full-size PI0 or PI05 `sample_actions` on CPU.

    /work/venvs/lerobot/bin/python tools/reference/bench_lerobot.py --dtype bfloat16 --cams 1 \
        --threads 2 --runs 3 [--model pi05]

Model: `PI0Pytorch(PI0Config(dtype=...))` (or `PI05Pytorch(PI05Config(...))` with --model pi05) at the
default sizes (PaliGemma Gemma-2B + Gemma-300M expert + SigLIP So400m/14, 224x224), randomly initialised
by transformers/torch; no checkpoint is downloaded (timing does not depend on the weight values). Inputs
follow the benchmark protocol of `pi0 bench` (Sources/pi0/BenchCommand.swift, BenchInputs.promptTokens):
batch 1, π0: 48 language tokens of which 20 are valid and a 14-d state; π0.5: 200 language tokens (its
default tokenizer_max_length) of which 50 are valid and no state tensor (the state is in the prompt);
chunk 50, 10 Euler steps, 1 or 3 cameras, fixed noise.

Protocol: 1 warm-up `sample_actions`, then --runs timed runs. Per-stage times call exactly what
`sample_actions` calls, separately: `embed_image` (one camera), `embed_prefix` (all cameras + language),
the prefix forward (`paligemma_with_expert.forward(..., use_cache=True)`), and one `denoise_step`.
Prints one JSON object (seconds; RSS in MiB).

Memory: a fresh full-size construction peaks at ~22 GB RSS in float32 (transformers builds the Gemma
stack twice before LeRobot swaps in its own modules). With --dtype bfloat16 this script constructs
under `torch.set_default_dtype(torch.bfloat16)` (--low-mem-init, default on for bf16) so parameters are
born bf16; LeRobot's own `to_bfloat16_for_selected_params` then gives exactly the usual bf16 dtype
map (vision tower, projector and RMSNorm weights float32). Only the random values differ.

Reduced depth (smoke runs on small machines): --depth N builds the VLM and the expert with N layers and
--vision-layers M the SigLIP tower with M layers, all widths unchanged (tiny_pi0.tiny_lerobot patch).
The JSON then also gives a linear per-layer extrapolation to the full depths (an estimate only).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

FULL = dict(vlm_width=2048, vlm_depth=18, vlm_mlp=16384, expert_width=1024, expert_depth=18, expert_mlp=4096,
            num_heads=8, num_kv_heads=1, head_dim=256, vision_hidden=1152, vision_layers=27, vision_heads=16,
            vision_intermediate=4304, patch_size=14, image_size=224, vocab_size=257152)


def rss_mib() -> float:
    """Peak resident set size of this process so far (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


# Prompt tokens (length, valid) per model, as `pi0 bench` (BenchInputs.promptTokens).
PROMPT = {"pi0": (48, 20), "pi05": (200, 50)}


def build(model_kind: str, dtype: str, low_mem: bool, depth: int, vision_layers: int):
    import contextlib

    if model_kind == "pi05":
        from lerobot.policies.pi05 import modeling_pi05 as module
        from lerobot.policies.pi05.configuration_pi05 import PI05Config as Config
        from lerobot.policies.pi05.modeling_pi05 import PI05Pytorch as Model
    else:
        from lerobot.policies.pi0 import modeling_pi0 as module
        from lerobot.policies.pi0.configuration_pi0 import PI0Config as Config
        from lerobot.policies.pi0.modeling_pi0 import PI0Pytorch as Model

    config = Config(dtype=dtype, device="cpu")
    patch = contextlib.nullcontext()
    if depth != FULL["vlm_depth"] or vision_layers != FULL["vision_layers"]:
        from tiny_pi0 import tiny_lerobot

        patch = tiny_lerobot({**FULL, "vlm_depth": depth, "expert_depth": depth, "vision_layers": vision_layers},
                             module=module)
    old = torch.get_default_dtype()
    if low_mem:
        torch.set_default_dtype(torch.bfloat16)
    try:
        with patch:
            model = Model(config)
    finally:
        torch.set_default_dtype(old)
    if low_mem:  # the heads live outside PaliGemmaWithExpertModel and are float32 in LeRobot
        heads = (("action_in_proj", "action_out_proj", "time_mlp_in", "time_mlp_out") if model_kind == "pi05" else
                 ("action_in_proj", "action_out_proj", "state_proj", "action_time_mlp_in", "action_time_mlp_out"))
        for name in heads:
            getattr(model, name).to(torch.float32)
    return model.eval(), config


def make_inputs(model_kind: str, config, cams: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    s = config.image_resolution[0]
    length, valid = PROMPT[model_kind]
    images = [torch.rand(1, 3, s, s, generator=g) * 2 - 1 for _ in range(cams)]
    masks = [torch.ones(1, dtype=torch.bool) for _ in range(cams)]
    tokens = torch.zeros(1, length, dtype=torch.int64)
    tokens[0, :valid] = torch.randint(3, 257152, (valid,), generator=g)
    tokens[0, 0] = 2
    lmask = torch.zeros(1, length, dtype=torch.bool)
    lmask[0, :valid] = True
    state = torch.zeros(1, 32)   # π0 only; π0.5 takes none
    state[0, :14] = torch.randn(14, generator=g)
    noise = torch.randn(1, config.chunk_size, 32, generator=g)
    return images, masks, tokens, lmask, state, noise


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def stages(model, images, masks, tokens, lmask, state, noise) -> dict[str, float]:
    """One pass of each stage, with the same calls and arguments sample_actions uses."""
    from lerobot.policies.common.vla_utils import make_att_2d_masks, prepare_attention_masks_4d

    pwe = model.paligemma_with_expert
    t = {}
    t["vision_one_image"], _ = timed(lambda: pwe.embed_image(images[0]))
    t["embed_prefix"], (embs, pad, att) = timed(lambda: model.embed_prefix(images, masks, tokens, lmask))
    att_2d = make_att_2d_masks(pad, att)
    pos = torch.cumsum(pad, dim=1) - 1
    pwe.paligemma.model.language_model.config._attn_implementation = "eager"  # noqa: SLF001 (as sample_actions)
    t["prefix_forward"], (_, pkv) = timed(lambda: pwe.forward(
        attention_mask=prepare_attention_masks_4d(att_2d), position_ids=pos, past_key_values=None,
        inputs_embeds=[embs, None], use_cache=True))
    timestep = torch.tensor(1.0, dtype=torch.float32).expand(state.shape[0])
    extra = {} if type(model).__name__ == "PI05Pytorch" else {"state": state}
    t["denoise_step"], _ = timed(lambda: model.denoise_step(
        prefix_pad_masks=pad, past_key_values=pkv, x_t=noise, timestep=timestep, **extra))
    return t


def summary(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "mean": statistics.fmean(xs), "n": len(xs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["pi0", "pi05"], default="pi0")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="bfloat16")
    ap.add_argument("--cams", default="1",
                    help="cameras, 1-3, or a list such as 1,3: one construction, then each count in turn "
                         "(the JSON then has one result per count under by_cameras)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--low-mem-init", choices=["auto", "on", "off"], default="auto",
                    help="construct with bf16 default dtype (auto: on for bfloat16)")
    ap.add_argument("--depth", type=int, default=FULL["vlm_depth"], help="VLM and expert layers (smoke runs)")
    ap.add_argument("--vision-layers", type=int, default=FULL["vision_layers"], help="SigLIP layers (smoke runs)")
    ap.add_argument("--build-only", action="store_true", help="only construct; report build time and RSS")
    ap.add_argument("--skip-stages", action="store_true", help="time only whole sample_actions runs, not the stages")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    low_mem = args.low_mem_init == "on" or (args.low_mem_init == "auto" and args.dtype == "bfloat16")
    torch.manual_seed(args.seed)

    t_build, (model, config) = timed(lambda: build(args.model, args.dtype, low_mem, args.depth, args.vision_layers))
    rss_after_build = current_rss_mib()
    peak_build = rss_mib()
    params = sum(p.numel() for p in model.parameters())
    head = {"what": f"lerobot 0.6.1 {'PI05Pytorch' if args.model == 'pi05' else 'PI0Pytorch'}, random init", "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "dtype": args.dtype, "low_mem_init": low_mem, "depth": args.depth,
            "vision_layers": args.vision_layers, "parameters": params, "build_s": t_build,
            "rss_after_build_mib": rss_after_build, "peak_rss_build_mib": peak_build}
    if args.build_only:
        print(json.dumps(head, indent=2))
        return
    cams_list = [int(c) for c in args.cams.split(",")]
    if any(c not in (1, 2, 3) for c in cams_list):
        ap.error("--cams: each count must be 1, 2 or 3")
    results = {c: measure(model, config, c, args) for c in cams_list}
    if len(cams_list) == 1:
        print(json.dumps({**head, **results[cams_list[0]], "peak_rss_mib": rss_mib()}, indent=2))
    else:
        print(json.dumps({**head, "by_cameras": {str(c): r for c, r in results.items()}, "peak_rss_mib": rss_mib()}, indent=2))


def measure(model, config, cams: int, args) -> dict:
    """One warm-up and --runs timed sample_actions with `cams` cameras (and the stages unless --skip-stages)."""
    inputs = make_inputs(args.model, config, cams, args.seed)
    images, masks, tokens, lmask, state, noise = inputs

    def sample():
        if args.model == "pi05":
            return model.sample_actions(images, masks, tokens, lmask, noise=noise)
        return model.sample_actions(images, masks, tokens, lmask, state, noise=noise)

    with torch.no_grad():
        t_warm, _ = timed(sample)
        runs = [timed(sample)[0] for _ in range(args.runs)]
        per_stage = [] if args.skip_stages else [stages(model, *inputs) for _ in range(args.runs)]
    stage_s = {k: summary([s[k] for s in per_stage]) for k in per_stage[0]} if per_stage else {}
    result = {
        "cameras": cams, "batch": 1, "lang_tokens": PROMPT[args.model][0], "lang_valid": PROMPT[args.model][1],
        "chunk": config.chunk_size, "steps": config.num_inference_steps,
        "warmup_s": t_warm, "sample_actions_s": summary(runs), "runs_s": runs, "stages_s": stage_s,
    }
    if stage_s and (args.depth != FULL["vlm_depth"] or args.vision_layers != FULL["vision_layers"]):
        g, v = FULL["vlm_depth"] / args.depth, FULL["vision_layers"] / args.vision_layers
        vis = stage_s["vision_one_image"]["median"] * v
        pre = stage_s["prefix_forward"]["median"] * g
        den = stage_s["denoise_step"]["median"] * g
        result["estimate_full_depth_s"] = {
            "note": "median stage time x (full layers / built layers); ignores non-layer costs",
            "vision_one_image": vis, "prefix_forward": pre, "denoise_step": den,
            "sample_actions": cams * vis + pre + config.num_inference_steps * den}
    return result


if __name__ == "__main__":
    main()
