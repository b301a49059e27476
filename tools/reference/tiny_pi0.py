"""Build LeRobot 0.6.1's own PI0 model at tiny sizes.

LeRobot's `PI0Config` only knows the variant *names* `gemma_2b` / `gemma_300m`, and
`PaliGemmaWithExpertModel.__init__` hard-codes the SigLIP size (intermediate 4304, projection 2048,
vocab 257152). To get a small model that still runs *LeRobot's* code path we patch three names in
`lerobot.policies.pi0.modeling_pi0` while the model is constructed:

* `get_gemma_config`  -> returns the tiny VLM / expert `GemmaConfig` (by variant name),
* `PaliGemmaForConditionalGenerationWithPiGemma` -> edits the HF PaliGemma config (vision tower size,
  projector width, vocab) just before the real class is built,
* `PiGemmaForCausalLM` -> edits the expert's vocab just before the real class is built.

Everything else (dtype handling, loading, sample_actions) is unpatched LeRobot code.
The dimensions live in a `pi0_dims.json` whose structure copies the shipped fixtures
(Tests/PI0Tests/Fixtures/tiny_1cam/pi0_dims.json), which the Swift loader reads.

π0.5 (`policy="pi05"`) uses the same three names in `lerobot.policies.pi05.modeling_pi05`, a
`PI05Config`, and a `pi05_dims.json` with the structure of Tests/PI0Tests/Fixtures/pi05_tiny_1cam.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import torch

from lerobot.policies.pi0 import modeling_pi0

# The real sizes, recorded in every pi0_dims.json for the reader's orientation.
REAL_SIZES = {
    "vlm": "gemma_2b: width 2048, depth 18, mlp 16384, heads 8, kv_heads 1, head_dim 256, vocab 257152",
    "expert": "gemma_300m: width 1024, depth 18, mlp 4096, heads 8, kv_heads 1, head_dim 256",
    "vision": "So400m/14: hidden 1152, 27 layers, 16 heads, intermediate 4304, patch 14, image 224",
    "projection_dim": 2048,
}

REAL_SIZES_PI05 = dict(REAL_SIZES, expert=REAL_SIZES["expert"] + ", adaRMS cond dim 1024",
                       tokenizer_max_length=200)

# Keys of "tiny_overrides" in pi0_dims.json, i.e. the command-line dimensions of make_case.py.
OVERRIDE_KEYS = [
    "vlm_width", "vlm_depth", "vlm_mlp", "expert_width", "expert_depth", "expert_mlp",
    "num_heads", "num_kv_heads", "head_dim", "vision_hidden", "vision_layers", "vision_heads",
    "vision_intermediate", "patch_size", "image_size", "vocab_size",
]
# Optional key (only present when given): the expert's query heads when they differ from the VLM's
# (LeRobot's inference allows it: both attend with the same KV heads and head_dim).
EXPERT_HEADS_KEY = "expert_num_heads"


@contextlib.contextmanager
def tiny_lerobot(ov: dict, module=modeling_pi0):
    """Patch LeRobot's PI0 module (or `module`, e.g. `modeling_pi05`, which imports the same three
    names) so that `PI0Pytorch(config)` / `PI05Pytorch(config)` builds the tiny sizes in `ov`."""
    modeling_pi0 = module  # noqa: N806 (the patched module)
    orig_get = modeling_pi0.get_gemma_config
    orig_pali = modeling_pi0.PaliGemmaForConditionalGenerationWithPiGemma
    orig_expert = modeling_pi0.PiGemmaForCausalLM

    def get_gemma_config(variant: str):
        if variant == "gemma_2b":
            return modeling_pi0.GemmaConfig(ov["vlm_width"], ov["vlm_depth"], ov["vlm_mlp"],
                                            ov["num_heads"], ov["num_kv_heads"], ov["head_dim"])
        if variant == "gemma_300m":
            return modeling_pi0.GemmaConfig(ov["expert_width"], ov["expert_depth"], ov["expert_mlp"],
                                            ov.get(EXPERT_HEADS_KEY, ov["num_heads"]), ov["num_kv_heads"],
                                            ov["head_dim"])
        raise ValueError(variant)

    def pali(config):
        vc = config.vision_config
        vc.hidden_size = ov["vision_hidden"]
        vc.num_hidden_layers = ov["vision_layers"]
        vc.num_attention_heads = ov["vision_heads"]
        vc.intermediate_size = ov["vision_intermediate"]
        vc.patch_size = ov["patch_size"]
        vc.image_size = ov["image_size"]
        vc.projection_dim = ov["vlm_width"]
        config.projection_dim = ov["vlm_width"]
        config.text_config.vocab_size = ov["vocab_size"]
        config._vocab_size = ov["vocab_size"]  # noqa: SLF001 (mirrors what lerobot sets)
        config.image_token_index = ov["vocab_size"]
        config.text_config.num_image_tokens = (ov["image_size"] // ov["patch_size"]) ** 2
        return orig_pali(config=config)

    def expert(config):
        config.vocab_size = ov["vocab_size"]
        return orig_expert(config=config)

    modeling_pi0.get_gemma_config = get_gemma_config
    modeling_pi0.PaliGemmaForConditionalGenerationWithPiGemma = pali
    modeling_pi0.PiGemmaForCausalLM = expert
    try:
        yield
    finally:
        modeling_pi0.get_gemma_config = orig_get
        modeling_pi0.PaliGemmaForConditionalGenerationWithPiGemma = orig_pali
        modeling_pi0.PiGemmaForCausalLM = orig_expert


def policy_module(policy: str):
    """LeRobot's modeling module of `policy` ("pi0" or "pi05")."""
    if policy == "pi05":
        from lerobot.policies.pi05 import modeling_pi05
        return modeling_pi05
    if policy == "pi0":
        return modeling_pi0
    raise ValueError(policy)


def make_config(ov: dict, n_cams: int, dtype: str, chunk: int, steps: int, policy: str = "pi0",
                max_action_dim: int = 32, tokenizer_max_length: int | None = None):
    """The PI0Config / PI05Config a LeRobot user would have for this tiny model (saved as config.json).

    π0.5 only: `max_action_dim` (the action feature is declared at that width) and
    `tokenizer_max_length` (the prompt length of the case, as in the shipped π0.5 fixtures)."""
    from lerobot.configs import FeatureType, PolicyFeature

    s = ov["image_size"]
    inputs = {f"observation.images.cam{c}": PolicyFeature(type=FeatureType.VISUAL, shape=(3, s, s))
              for c in range(n_cams)}
    inputs["observation.state"] = PolicyFeature(type=FeatureType.STATE, shape=(32,))
    if policy == "pi05":
        from lerobot.policies.pi05.configuration_pi05 import PI05Config

        outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(max_action_dim,))}
        return PI05Config(input_features=inputs, output_features=outputs, device="cpu", dtype=dtype,
                          chunk_size=chunk, n_action_steps=chunk, num_inference_steps=steps,
                          max_action_dim=max_action_dim, image_resolution=(s, s),
                          tokenizer_max_length=tokenizer_max_length or 200)
    from lerobot.policies.pi0.configuration_pi0 import PI0Config

    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(32,))}
    return PI0Config(input_features=inputs, output_features=outputs, device="cpu", dtype=dtype,
                     chunk_size=chunk, n_action_steps=chunk, num_inference_steps=steps,
                     image_resolution=(s, s))


def random_state_dict(model: torch.nn.Module, seed: int, bf16: bool) -> dict[str, torch.Tensor]:
    """Deterministic random weights for every entry of `model.state_dict()`.

    Scales follow the shipped fixtures: linear/conv weights N(0,1)/sqrt(fan_in); biases N(0,0.05²);
    Gemma RMSNorm weights N(0,0.1²) (used as 1+w, so a wrong '+1' is visible); SigLIP LayerNorm
    weights 1+N(0,0.1²); token embeddings N(0,1)/sqrt(width); position embedding N(0,0.2²).
    π0.5's adaRMS `dense` layers (shipped π0.5 fixtures' README, "Random weights"): weights
    N(0,1)·2/sqrt(cond_dim), biases N(0,0.05²) plus 1 on the gate third, so the gates are far from 0
    (LeRobot zero-initialises them, which would hide most expert mistakes). π0 has no such tensors.
    With bf16=True every value is rounded to bf16 so a BF16 checkpoint loses nothing.
    """
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, ref in sorted(model.state_dict().items()):
        shape = tuple(ref.shape)
        r = torch.randn(shape, generator=g, dtype=torch.float32)
        if name.endswith("embed_tokens.weight"):
            continue  # filled from lm_head below (they are the same matrix in real checkpoints)
        if ".dense." in name and name.endswith("bias"):  # π0.5 adaRMS [scale | shift | gate]
            t = 0.05 * r
            t[2 * shape[0] // 3:] += 1.0
        elif ".dense." in name:
            t = r * 2.0 / math.sqrt(shape[1])
        elif name.endswith("bias"):
            t = 0.05 * r
        elif any(k in name for k in ("input_layernorm", "post_attention_layernorm", "model.norm")):
            t = 0.1 * r
        elif any(k in name for k in ("layer_norm1", "layer_norm2", "post_layernorm")):
            t = 1.0 + 0.1 * r
        elif "position_embedding" in name:
            t = 0.2 * r
        elif name.endswith("lm_head.weight"):
            t = r / math.sqrt(shape[1])
        else:
            t = r / math.sqrt(math.prod(shape[1:]))
        if bf16:
            t = t.to(torch.bfloat16).to(torch.float32)
        out[name] = t
    for name in model.state_dict():
        if name.endswith("paligemma.model.language_model.embed_tokens.weight"):
            out[name] = out[name.replace("model.language_model.embed_tokens", "lm_head")].clone()
    return out


def dims_json(case: str, seed: int, notes: str, ov: dict, dtype: str, chunk: int, steps: int,
              inputs_info: dict) -> dict:
    """pi0_dims.json with exactly the structure of the shipped fixtures."""
    import transformers

    import lerobot

    n_patch = (ov["image_size"] // ov["patch_size"]) ** 2
    gemma_common = {"rms_norm_eps": 1e-06, "rope_theta": 10000.0, "hidden_act": "gelu_pytorch_tanh"}
    return {
        "case": case,
        "seed": seed,
        "notes": notes,
        "lerobot_version": lerobot.__version__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "weights_dtype_config": dtype,
        "vlm": {"width": ov["vlm_width"], "depth": ov["vlm_depth"], "mlp_dim": ov["vlm_mlp"],
                "num_heads": ov["num_heads"], "num_kv_heads": ov["num_kv_heads"], "head_dim": ov["head_dim"],
                "vocab_size": ov["vocab_size"], **gemma_common,
                "embed_scale": float(ov["vlm_width"]) ** 0.5},
        "expert": {"width": ov["expert_width"], "depth": ov["expert_depth"], "mlp_dim": ov["expert_mlp"],
                   "num_heads": ov.get(EXPERT_HEADS_KEY, ov["num_heads"]), "num_kv_heads": ov["num_kv_heads"],
                   "head_dim": ov["head_dim"], "vocab_size_unused_lm_head": ov["vocab_size"], **gemma_common},
        "vision": {"hidden_size": ov["vision_hidden"], "num_layers": ov["vision_layers"],
                   "num_heads": ov["vision_heads"], "intermediate_size": ov["vision_intermediate"],
                   "patch_size": ov["patch_size"], "image_size": ov["image_size"],
                   "num_patches_per_image": n_patch, "layer_norm_eps": 1e-06,
                   "hidden_act": "gelu_pytorch_tanh", "projection_dim": ov["vlm_width"], "use_head": False},
        "pi0": {"chunk_size": chunk, "num_inference_steps": steps, "max_state_dim": 32, "max_action_dim": 32,
                "min_period": 0.004, "max_period": 4.0, "attention_mask_value": -2.3819763e38,
                "time_embedding_dim": ov["expert_width"]},
        "inputs": inputs_info,
        "real_size_for_comparison": REAL_SIZES,
        "tiny_overrides": {k: ov[k] for k in OVERRIDE_KEYS + [EXPERT_HEADS_KEY] if k in ov},
    }


def dims_json_pi05(case: str, seed: int, notes: str, ov: dict, dtype: str, chunk: int, steps: int,
                   inputs_info: dict, max_action_dim: int, tokenizer_max_length: int) -> dict:
    """pi05_dims.json with exactly the structure of the shipped π0.5 fixtures
    (Tests/PI0Tests/Fixtures/pi05_tiny_1cam/pi05_dims.json). `inputs_info["img_masks"]` is per
    camera, then per batch row, as there."""
    d = dims_json(case, seed, notes, ov, dtype, chunk, steps, inputs_info)
    d.pop("pi0")
    out = {k: d[k] for k in ("case", "seed", "notes")}
    out["policy"] = "pi05"
    out.update({k: d[k] for k in ("lerobot_version", "transformers_version", "torch_version",
                                  "weights_dtype_config")})
    vlm = dict(d["vlm"])
    scale = vlm.pop("embed_scale")
    out["vlm"] = dict(vlm, use_adarms=False, embed_scale=scale)
    out["expert"] = dict(d["expert"], use_adarms=True, adarms_cond_dim=ov["expert_width"])
    out["vision"] = d["vision"]
    out["pi05"] = {"chunk_size": chunk, "num_inference_steps": steps, "max_action_dim": max_action_dim,
                   "max_state_dim_unused_by_model": 32, "min_period": 0.004, "max_period": 4.0,
                   "attention_mask_value": -2.3819763e38, "time_embedding_dim": ov["expert_width"],
                   "suffix_tokens": chunk, "state_token": False, "tokenizer_max_length": tokenizer_max_length}
    out["inputs"] = inputs_info
    out["real_size_for_comparison"] = REAL_SIZES_PI05
    out["tiny_overrides"] = d["tiny_overrides"]
    return out


def load_policy(case_dir: Path):
    """Load a case folder through LeRobot's own `PI0Policy.from_pretrained` (or `PI05Policy`'s, when
    the folder has `pi05_dims.json`) at its tiny sizes. Returns (policy, dims)."""
    if (case_dir / "pi05_dims.json").exists():
        from lerobot.policies.pi05.modeling_pi05 import PI05Policy as cls

        dims = json.loads((case_dir / "pi05_dims.json").read_text())
    else:
        from lerobot.policies.pi0.modeling_pi0 import PI0Policy as cls

        dims = json.loads((case_dir / "pi0_dims.json").read_text())
    module = policy_module(dims.get("policy", "pi0"))
    with tiny_lerobot(dims["tiny_overrides"], module), contextlib.redirect_stdout(None):
        policy = cls.from_pretrained(str(case_dir), local_files_only=True)
    policy.eval()
    return policy, dims
