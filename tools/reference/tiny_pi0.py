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
(/work/shared/fixtures/pi0/tiny_1cam/pi0_dims.json), which the Swift loader reads.
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

# Keys of "tiny_overrides" in pi0_dims.json, i.e. the command-line dimensions of make_case.py.
OVERRIDE_KEYS = [
    "vlm_width", "vlm_depth", "vlm_mlp", "expert_width", "expert_depth", "expert_mlp",
    "num_heads", "num_kv_heads", "head_dim", "vision_hidden", "vision_layers", "vision_heads",
    "vision_intermediate", "patch_size", "image_size", "vocab_size",
]


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
                                            ov["num_heads"], ov["num_kv_heads"], ov["head_dim"])
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


def make_config(ov: dict, n_cams: int, dtype: str, chunk: int, steps: int):
    """The PI0Config a LeRobot user would have for this tiny model (saved as config.json)."""
    from lerobot.configs import FeatureType, PolicyFeature
    from lerobot.policies.pi0.configuration_pi0 import PI0Config

    s = ov["image_size"]
    inputs = {f"observation.images.cam{c}": PolicyFeature(type=FeatureType.VISUAL, shape=(3, s, s))
              for c in range(n_cams)}
    inputs["observation.state"] = PolicyFeature(type=FeatureType.STATE, shape=(32,))
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(32,))}
    return PI0Config(input_features=inputs, output_features=outputs, device="cpu", dtype=dtype,
                     chunk_size=chunk, n_action_steps=chunk, num_inference_steps=steps,
                     image_resolution=(s, s))


def random_state_dict(model: torch.nn.Module, seed: int, bf16: bool) -> dict[str, torch.Tensor]:
    """Deterministic random weights for every entry of `model.state_dict()`.

    Scales follow the shipped fixtures: linear/conv weights N(0,1)/sqrt(fan_in); biases N(0,0.05²);
    Gemma RMSNorm weights N(0,0.1²) (used as 1+w, so a wrong '+1' is visible); SigLIP LayerNorm
    weights 1+N(0,0.1²); token embeddings N(0,1)/sqrt(width); position embedding N(0,0.2²).
    With bf16=True every value is rounded to bf16 so a BF16 checkpoint loses nothing.
    """
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, ref in sorted(model.state_dict().items()):
        shape = tuple(ref.shape)
        r = torch.randn(shape, generator=g, dtype=torch.float32)
        if name.endswith("embed_tokens.weight"):
            continue  # filled from lm_head below (they are the same matrix in real checkpoints)
        if name.endswith("bias"):
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
                   "num_heads": ov["num_heads"], "num_kv_heads": ov["num_kv_heads"],
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
        "tiny_overrides": {k: ov[k] for k in OVERRIDE_KEYS},
    }


def load_policy(case_dir: Path):
    """Load a case folder through LeRobot's own `PI0Policy.from_pretrained` at its tiny sizes."""
    from lerobot.policies.pi0.modeling_pi0 import PI0Policy

    dims = json.loads((case_dir / "pi0_dims.json").read_text())
    with tiny_lerobot(dims["tiny_overrides"]), contextlib.redirect_stdout(None):
        policy = PI0Policy.from_pretrained(str(case_dir), local_files_only=True)
    policy.eval()
    return policy, dims
