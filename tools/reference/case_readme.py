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


def dtype_map(policy) -> list[str]:
    """The shipped π0.5 READMEs' dtype tables: every parameter / buffer name of the loaded LeRobot
    policy with layer indices folded to `{i}` and the vision tower to `**`, and its dtype."""
    def fold(name: str) -> str:
        name = re.sub(r"\.layers\.\d+\.", ".layers.{i}.", name)
        return re.sub(r"(vision_tower\.vision_model)\..*", r"\1.**", name)

    lines: list[str] = []
    for title, items in (("parameter", policy.named_parameters(remove_duplicate=False)),
                         ("buffer", policy.named_buffers(remove_duplicate=False))):
        seen: dict[str, str] = {}
        for name, t in items:
            seen.setdefault(fold(name), str(t.dtype).replace("torch.", ""))
        lines += [f"| {title} pattern | dtype |", "|---|---|", *[f"| `{k}` | {v} |" for k, v in seen.items()], ""]
    return lines


def _readme_lines(title: str, notes: str, produced: list[str], command: str, inputs: dict, outputs: dict,
                  input_meaning: dict[str, str], output_meaning: dict[str, str]) -> list[str]:
    """The README layout both models share: title, notes, provenance, regenerate command, tensor tables."""
    return [
        title,
        "",
        notes,
        "",
        *produced,
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
        *_rows(inputs, input_meaning),
        "",
        "## outputs.safetensors",
        "",
        *_rows(outputs, output_meaning),
        "",
    ]


def write_readme(path, case: str, notes: str, command: str, inputs: dict, outputs: dict,
                 policy=None) -> None:
    """`policy`: the loaded LeRobot PI05Policy for a π0.5 case (adds its dtype map), None for π0."""
    if policy is not None:
        return _write_readme_pi05(path, case, notes, command, inputs, outputs, policy)
    produced = [
        "Produced by `tools/reference/make_case.py` running lerobot 0.6.1 `PI0Pytorch.sample_actions` "
        "(transformers 5.5.4, torch 2.11, CPU) on a random-weight model loaded back through "
        "`PI0Policy.from_pretrained`. Dimensions: `pi0_dims.json`. B=batch, P=prefix length, S=1+chunk.",
    ]
    lines = _readme_lines(f"# PI0 fixture `{case}`", notes, produced, command, inputs, outputs, INPUT_MEANING, OUTPUT_MEANING)
    path.write_text("\n".join(lines))


# π0.5 meanings where they differ from π0's (shipped π0.5 fixtures' README).
INPUT_MEANING_PI05 = dict(INPUT_MEANING, lang_tokens="prompt token ids (random ids standing in for 'Task: ..., State: ...;\\nAction: '), right-padded with 0")
INPUT_MEANING_PI05.pop("state")

OUTPUT_MEANING_PI05 = {k: v for k, v in OUTPUT_MEANING.items() if k != "suffix_action_time_in_step0"}
OUTPUT_MEANING_PI05.update({
    'img_emb_cam': 'embed_image output = multi_modal_projector(vision_out) (no scaling), float32',
    'lang_emb': 'embed_language_tokens output = embedding row * sqrt(vlm width) (in embedding weight dtype)',
    'prefix_embs': 'embed_prefix: concat(images..., lang) along tokens (torch.cat type promotion)',
    'prefix_out': 'VLM output after final RMSNorm (computed by lerobot, not used by inference)',
    'time_emb_all': 'sinusoidal time embedding of t at every step [num_steps,B,expert width] (float64 math, cast to float32)',
    'time_mlp_hidden_all': 'swish(time_mlp_in(time_emb)) at every step [num_steps,B,expert width]',
    'adarms_cond_all': 'adarms_cond = swish(time_mlp_out(swish(time_mlp_in(time_emb)))) at every step [num_steps,B,expert width] float32',
    'suffix_embs_step0': 'embed_suffix tokens at step 0 = action_in_proj(noise) [B,chunk,expert width] (no time, no state token)',
    'suffix_pad_masks': 'embed_suffix pad mask (all True) [B,chunk]',
    'suffix_att_masks': 'embed_suffix att mask [1,0,0,...] (float, as lerobot returns it) [B,chunk]',
    'suffix_position_ids': 'RoPE positions of suffix: n_valid_prefix + arange(chunk)',
    'denoise_att_2d_masks': 'suffix-query mask used in each denoise step [B,chunk,P+chunk]: prefix pad | suffix 2D',
    'full_att_2d_masks': 'make_att_2d_masks over concat(prefix,suffix) as in the training forward [B,P+chunk,P+chunk]',
    'adarms_mod_layer0_input_step0': 'expert layer 0 input_layernorm.dense(adarms_cond) at step 0 [B,3*width] = [scale|shift|gate]',
    'adarms_mod_layer0_post_attn_step0': 'expert layer 0 post_attention_layernorm.dense(adarms_cond) at step 0 [B,3*width]',
    'adarms_mod_final_norm_step0': 'expert final norm dense(adarms_cond) at step 0 [B,3*width] (its gate third is discarded)',
    'expert_layer0_step0_input_norm_out': 'adaRMSNorm output (input_layernorm) of expert layer 0 at step 0: rms(x)*(1+scale)+shift',
    'expert_layer0_step0_input_norm_gate': 'gate returned by that adaRMSNorm [B,1,width] (multiplies the attention output)',
    'expert_layer0_step0_attn_out': 'self_attn output (after o_proj, before the gated residual) of expert layer 0 at step 0',
    'expert_layer0_step0_post_attn_norm_out': 'post_attention_layernorm (adaRMS) output of expert layer 0 at step 0 (MLP input)',
    'expert_layer0_step0_post_attn_norm_gate': 'gate of the post-attention adaRMSNorm [B,1,width] (multiplies the MLP output)',
    'expert_layer0_step0_mlp_out': 'MLP output of expert layer 0 at step 0 (before the gated residual)',
    'suffix_out_step0': 'action expert output after the final adaRMS norm at step 0 (hidden dtype)',
    'suffix_out_all': 'action expert output after the final adaRMS norm at every step [num_steps,B,chunk,width] (hidden dtype)',
    'v_t_step0': 'velocity of step 0 = action_out_proj(float32(suffix_out)) (float32)',
    'rmsnorm_in': 'random input for the plain (VLM) RMSNorm component test',
    'adarms_in': 'random input x [B,7,expert width] (hidden dtype) for the adaRMSNorm component test',
    'adarms_cond_in': 'random cond [B,expert width] float32 for the adaRMSNorm component test',
    'adarms_out': 'PiGemmaRMSNorm(adarms_in, cond=adarms_cond_in)[0] with expert layers.0.input_layernorm (dense.weight/bias)',
    'adarms_gate': 'PiGemmaRMSNorm(adarms_in, cond=adarms_cond_in)[1] (the gate, [B,1,width])',
})


def _write_readme_pi05(path, case, notes, command, inputs, outputs, policy) -> None:
    dtype = policy.config.dtype
    produced = [
        "Produced by `tools/reference/make_pi05_case.py` running lerobot 0.6.1 `PI05Pytorch.sample_actions` "
        "(transformers 5.5.4, torch 2.11, CPU) on a random-weight model loaded back through "
        "`PI05Policy.from_pretrained`. Dimensions: `pi05_dims.json`. B=batch, P=prefix length (cameras x "
        "patches + prompt tokens), chunk = chunk_size = number of suffix tokens (pi05 has no state token). "
        "`sample_actions(images, img_masks, lang_tokens, lang_masks, noise=noise)`: there is no state "
        "argument (the discretised state is part of the prompt text).",
    ]
    lines = _readme_lines(f"# PI0.5 (pi05) fixture `{case}`", notes, produced, command, inputs, outputs,
                          INPUT_MEANING_PI05, OUTPUT_MEANING_PI05)
    lines += [
        f"## dtype map (PI05Config.dtype = `{dtype}`, as lerobot holds the model after `PI05Policy.from_pretrained`)",
        "",
        *dtype_map(policy),
    ]
    path.write_text("\n".join(lines))
