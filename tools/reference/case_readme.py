"""README.md writer for a golden case, in the format of the shipped fixtures' READMEs."""

from __future__ import annotations

import re

import torch

INPUT_MEANING = {
    "image": "camera c image exactly as sample_actions receives it: [B,3,H,W] float32 in [-1,1]",
    "img_mask": "camera c validity per batch row (False -> its tokens are padding)",
    "lang_tokens": "token ids, right-padded with 0 (row starts with Gemma BOS = 2)",
    "lang_masks": "True for real tokens, False for padding",
    "state": "normalised state, zero-padded to max_state_dim",
    "noise": "x at t=1 (passed as noise= to sample_actions)",
}

OUTPUT_MEANING = {
    "vision_embeddings_cam": "SigLIP patch-conv + position embedding (input of encoder layer 0)",
    "vision_out_cam": "SigLIP output after post_layernorm, before the projector",
    "img_emb_cam": "embed_image output = multi_modal_projector(vision_out) (no scaling)",
    "lang_emb": "embed_language_tokens output = embedding row * sqrt(vlm width) (in weight dtype)",
    "prefix_embs": "embed_prefix: concat(images..., lang) along tokens",
    "prefix_pad_masks": "embed_prefix pad mask (image masks expanded + lang masks)",
    "prefix_att_masks": "embed_prefix autoregressive mask (all False: full bidirectional prefix)",
    "prefix_position_ids": "cumsum(prefix_pad_masks)-1 (RoPE positions of prefix)",
    "prefix_att_2d_masks": "make_att_2d_masks(prefix pad, prefix att): [B,P(query),P(key)] True = may attend",
    "prefix_out": "VLM output after final RMSNorm (computed by lerobot, not used by PI0 inference)",
    "kv_layer0_keys": "prefix KV cache, VLM layer 0 keys AFTER RoPE [B,kv_heads,P,head_dim]",
    "kv_layer0_values": "prefix KV cache, VLM layer 0 values",
    "kv_last_keys": "prefix KV cache, last VLM layer keys AFTER RoPE",
    "kv_last_values": "prefix KV cache, last VLM layer values",
    "kv_all_keys": "prefix KV cache keys for every layer [depth,B,kv_heads,P,head_dim]",
    "kv_all_values": "prefix KV cache values for every layer",
    "suffix_embs_step0": "embed_suffix at step 0 (t=1): [state token, chunk action tokens]",
    "suffix_pad_masks": "embed_suffix pad mask (all True)",
    "suffix_att_masks": "embed_suffix att mask [1,1,0,0,...] (float, as lerobot returns it)",
    "suffix_position_ids": "RoPE positions of suffix: n_valid_prefix + cumsum(suffix pad)-1",
    "denoise_att_2d_masks": "suffix-query mask used in each denoise step [B,S,P+S]: prefix pad | suffix 2D",
    "full_att_2d_masks": "make_att_2d_masks over concat(prefix,suffix) as in the training forward [B,P+S,P+S]",
    "suffix_out_step0": "action expert output after final RMSNorm at step 0 (all 1+chunk tokens)",
    "v_t_step0": "velocity of step 0 = action_out_proj(suffix_out[:, -chunk:]) (float32)",
    "v_t_all": "velocity at every step [num_steps,B,chunk,32]",
    "x_t_all": "x after each Euler step [num_steps,B,chunk,32]; x_t_all[-1] == actions",
    "timesteps": "t used at each step (1, 1+dt, ...), float32",
    "actions": "final sample_actions output (t=0), [B,chunk,32] float32, still padded to max_action_dim",
    "siglip_layer0_in": "camera-0 input of SigLIP encoder layer 0",
    "siglip_layer0_out": "camera-0 output of SigLIP encoder layer 0",
    "vlm_layer0_in": "input of VLM decoder layer 0 in the prefix pass (= prefix_embs cast to layer dtype)",
    "vlm_layer0_out": "output of VLM decoder layer 0 (prefix only, mask prefix_att_2d_masks, "
                      "positions prefix_position_ids)",
    "vlm_layer0_rope_cos": "RoPE cos table passed to VLM layers [B,P,head_dim] (in hidden dtype)",
    "vlm_layer0_rope_sin": "RoPE sin table passed to VLM layers",
    "expert_layer0_step0_in": "input of expert decoder layer 0 at step 0 (= suffix_embs_step0 cast to layer dtype)",
    "expert_layer0_step0_out": "output of expert decoder layer 0 at step 0 (attends to prefix KV of layer 0 + suffix)",
    "expert_layer0_step0_rope_cos": "RoPE cos for suffix positions",
    "expert_layer0_step0_rope_sin": "RoPE sin for suffix positions",
    "suffix_action_time_in_step0": "input of action_time_mlp_in at step 0: concat(action_in_proj(x_t), time_emb)",
    "rmsnorm_in": "random input for the RMSNorm component test",
    "rmsnorm_out": "PiGemmaRMSNorm(rmsnorm_in) using weight "
                   "'model.paligemma_with_expert.paligemma.model.language_model.layers.0.input_layernorm.weight'",
    "time_emb_f64": "the float64 values before the float32 cast, rows [t=1.0, t=0.3]",
    "time_emb_t1_0": "create_sinusoidal_pos_embedding(t=1.0, expert width, min/max period) cast to float32",
    "time_emb_t0_3": "same for t=0.3 (float32 0.3, i.e. 0.30000001192...)",
}


def _meaning(table: dict[str, str], name: str) -> str:
    if name in table:
        return table[name]
    base = re.sub(r"_?\d+$", "", name)
    return table.get(base, "")


def _rows(tensors: dict[str, torch.Tensor], table: dict[str, str]) -> list[str]:
    rows = ["| name | shape | dtype | meaning |", "|---|---|---|---|"]
    for name, t in tensors.items():
        dtype = str(t.dtype).replace("torch.", "")
        rows.append(f"| {name} | {list(t.shape)} | {dtype} | {_meaning(table, name)} |")
    return rows


def write_readme(path, case: str, notes: str, command: str, inputs: dict, outputs: dict) -> None:
    lines = [
        f"# PI0 fixture `{case}`",
        "",
        notes,
        "",
        "Produced by `tools/reference/make_case.py` running lerobot 0.6.1 `PI0Pytorch.sample_actions` "
        "(transformers 5.5.4, torch 2.11, CPU) on a random-weight model loaded back through "
        "`PI0Policy.from_pretrained`. Dimensions: `pi0_dims.json`. B=batch, P=prefix length, S=1+chunk.",
        "Rows of per-token tensors at padded prefix positions (pad mask False) are well defined in lerobot "
        "(finite mask value -2.3819763e38 makes fully-masked query rows attend uniformly) but they never "
        "influence actions; compare valid rows only.",
        "",
        "Regenerate (from the repository root):",
        "",
        "```",
        command,
        "```",
        "",
        "## inputs.safetensors",
        "",
        *_rows(inputs, INPUT_MEANING),
        "",
        "## outputs.safetensors",
        "",
        *_rows(outputs, OUTPUT_MEANING),
        "",
    ]
    path.write_text("\n".join(lines))
