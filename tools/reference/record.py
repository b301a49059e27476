"""Run LeRobot's `PI0Pytorch.sample_actions` (or `PI05Pytorch`'s) once and capture the intermediates
of a golden case.

Nothing here re-implements π0 / π0.5: every tensor is taken from LeRobot's own calls, by wrapping the
bound methods `sample_actions` calls (`embed_prefix`, `embed_suffix`, `denoise_step`,
`paligemma_with_expert.forward/embed_image/embed_language_tokens`) on the instance, and by forward
hooks on SigLIP / Gemma submodules. The names and meanings are those of the shipped fixtures'
READMEs (Tests/PI0Tests/Fixtures/tiny_1cam/README.md, pi05_tiny_1cam/README.md). Only
`full_att_2d_masks` and the RMSNorm / adaRMSNorm / time-embedding component tensors are computed by
calling LeRobot's functions and modules directly.
"""

from __future__ import annotations

import torch

from lerobot.policies.common.vla_utils import create_sinusoidal_pos_embedding, make_att_2d_masks


def _first(args, kwargs, name):
    return args[0] if args else kwargs[name]


def record_sample_actions(model, inputs: dict[str, torch.Tensor], n_cams: int, seed: int,
                          rmsnorm_in: torch.Tensor | None = None, adarms_in: torch.Tensor | None = None,
                          adarms_cond_in: torch.Tensor | None = None):
    """Returns (actions, outputs dict) for `model` (a LeRobot `PI0Pytorch` or `PI05Pytorch`; π0.5 is
    recognised by its `time_mlp_in`, takes no state and records its time conditioning and adaRMS).

    `rmsnorm_in` / `adarms_in` / `adarms_cond_in`: inputs of the component checks (default: drawn
    from `seed`); pass a stored case's tensors to recompute its `rmsnorm_out` / `adarms_out`.
    """
    pi05 = hasattr(model, "time_mlp_in")
    # Fresh (64-byte aligned) copies: tensors straight out of safetensors.load_file may sit at odd
    # offsets, and MKL's sgemm picks alignment-dependent kernels (1-ulp differences otherwise).
    inputs = {k: v.clone() for k, v in inputs.items()}
    pwe = model.paligemma_with_expert
    vision = pwe.paligemma.model.vision_tower.vision_model
    lm = pwe.paligemma.model.language_model
    expert = pwe.gemma_expert.model
    rec: dict[str, torch.Tensor] = {}
    lists: dict[str, list] = {"vis_emb": [], "vis_out": [], "img_emb": [], "x_in": [], "t": [], "v": [],
                              "time_emb": [], "time_hidden": [], "cond": [], "suffix_out": []}
    handles = []

    def once(key, value):
        if key not in rec:
            rec[key] = value.detach().clone()

    # --- vision tower, per camera call ---
    handles.append(vision.embeddings.register_forward_hook(
        lambda m, a, o: lists["vis_emb"].append(o.detach().clone())))
    handles.append(vision.post_layernorm.register_forward_hook(
        lambda m, a, o: lists["vis_out"].append(o.detach().clone())))

    def siglip0(m, args, kwargs, out):
        once("siglip_layer0_in", _first(args, kwargs, "hidden_states"))
        once("siglip_layer0_out", out[0] if isinstance(out, tuple) else out)
    handles.append(vision.encoder.layers[0].register_forward_hook(siglip0, with_kwargs=True))

    # --- first Gemma layers: the first VLM call is the prefix pass, the first expert call is step 0 ---
    def layer_hook(prefix):
        def hook(m, args, kwargs, out):
            once(f"{prefix}_in", _first(args, kwargs, "hidden_states"))
            once(f"{prefix}_out", out[0] if isinstance(out, tuple) else out)
            cos, sin = kwargs["position_embeddings"]
            once(f"{prefix}_rope_cos", cos)
            once(f"{prefix}_rope_sin", sin)
        return hook
    handles.append(lm.layers[0].register_forward_hook(layer_hook("vlm_layer0"), with_kwargs=True))
    handles.append(expert.layers[0].register_forward_hook(layer_hook("expert_layer0_step0"), with_kwargs=True))
    if pi05:
        handles += _pi05_hooks(model, expert, once, lists)
    else:
        handles.append(model.action_time_mlp_in.register_forward_pre_hook(
            lambda m, a: once("suffix_action_time_in_step0", a[0])))

    # --- wrapped bound methods ---
    orig = {n: getattr(pwe, n) for n in ("embed_image", "embed_language_tokens", "forward")}
    orig.update({n: getattr(model, n) for n in ("embed_prefix", "embed_suffix", "denoise_step")})

    def embed_image(img):
        out = orig["embed_image"](img)
        lists["img_emb"].append(out.detach().clone())
        return out

    def embed_language_tokens(tokens):
        out = orig["embed_language_tokens"](tokens)
        once("lang_emb", out)
        return out

    def pwe_forward(**kw):
        outs, pkv = orig["forward"](**kw)
        if kw["inputs_embeds"][1] is None:  # prefix pass (use_cache=True)
            once("prefix_position_ids", kw["position_ids"])
            once("prefix_att_2d_masks", kw["attention_mask"][:, 0] == 0.0)
            once("prefix_out", outs[0])
            ks = [k.detach().clone() for k, _, _ in pkv]
            vs = [v.detach().clone() for _, v, _ in pkv]
            rec["kv_all_keys"], rec["kv_all_values"] = torch.stack(ks), torch.stack(vs)
        else:  # expert pass of a denoise step
            once("suffix_position_ids", kw["position_ids"])
            once("denoise_att_2d_masks", kw["attention_mask"][:, 0] == 0.0)
            once("suffix_out_step0", outs[1])
            lists["suffix_out"].append(outs[1].detach().clone())
        return outs, pkv

    def embed_prefix(*a, **kw):
        embs, pad, att = orig["embed_prefix"](*a, **kw)
        once("prefix_embs", embs)
        once("prefix_pad_masks", pad)
        once("prefix_att_masks", att)
        return embs, pad, att

    def embed_suffix(*a, **kw):
        embs, pad, att, cond = orig["embed_suffix"](*a, **kw)
        once("suffix_embs_step0", embs)
        once("suffix_pad_masks", pad)
        once("suffix_att_masks", att)
        if cond is not None:  # π0.5's adarms_cond
            lists["cond"].append(cond.detach().clone())
        return embs, pad, att, cond

    def denoise_step(**kw):
        v = orig["denoise_step"](**kw)
        lists["x_in"].append(kw["x_t"].detach().clone())
        lists["t"].append(kw["timestep"][0].detach().clone())
        lists["v"].append(v.detach().clone())
        return v

    pwe.embed_image, pwe.embed_language_tokens, pwe.forward = embed_image, embed_language_tokens, pwe_forward
    model.embed_prefix, model.embed_suffix, model.denoise_step = embed_prefix, embed_suffix, denoise_step
    try:
        images = [inputs[f"image_{c}"] for c in range(n_cams)]
        masks = [inputs[f"img_mask_{c}"] for c in range(n_cams)]
        state = () if pi05 else (inputs["state"],)
        with torch.no_grad():
            actions = model.sample_actions(images, masks, inputs["lang_tokens"], inputs["lang_masks"],
                                           *state, noise=inputs["noise"])
    finally:
        for h in handles:
            h.remove()
        for n in ("embed_image", "embed_language_tokens", "forward"):
            delattr(pwe, n)
        for n in ("embed_prefix", "embed_suffix", "denoise_step"):
            delattr(model, n)

    out: dict[str, torch.Tensor] = {}
    for c in range(n_cams):
        out[f"vision_embeddings_cam{c}"] = lists["vis_emb"][c]
        out[f"vision_out_cam{c}"] = lists["vis_out"][c]
        out[f"img_emb_cam{c}"] = lists["img_emb"][c]
    for k in ("lang_emb", "prefix_embs", "prefix_pad_masks", "prefix_att_masks", "prefix_position_ids",
              "prefix_att_2d_masks", "prefix_out"):
        out[k] = rec[k]
    ks, vs = rec["kv_all_keys"], rec["kv_all_values"]
    out.update(kv_layer0_keys=ks[0], kv_layer0_values=vs[0], kv_last_keys=ks[-1], kv_last_values=vs[-1],
               kv_all_keys=ks, kv_all_values=vs)
    if pi05:  # the shipped π0.5 fixtures' order
        out["timesteps"] = torch.stack(lists["t"])
        out["time_emb_all"] = torch.stack(lists["time_emb"])
        out["time_mlp_hidden_all"] = torch.stack(lists["time_hidden"])
        out["adarms_cond_all"] = torch.stack(lists["cond"])
    for k in ("suffix_embs_step0", "suffix_pad_masks", "suffix_att_masks", "suffix_position_ids",
              "denoise_att_2d_masks"):
        out[k] = rec[k]
    # The training-forward mask over concat(prefix, suffix), built with LeRobot's own function.
    out["full_att_2d_masks"] = make_att_2d_masks(
        torch.cat([rec["prefix_pad_masks"], rec["suffix_pad_masks"]], dim=1),
        torch.cat([rec["prefix_att_masks"], rec["suffix_att_masks"]], dim=1))
    if pi05:
        for k in PI05_EXPERT_LAYER0:
            out[k] = rec[k]
        out["suffix_out_step0"] = rec["suffix_out_step0"]
        out["suffix_out_all"] = torch.stack(lists["suffix_out"])
    else:
        out["suffix_out_step0"] = rec["suffix_out_step0"]
    out["v_t_step0"] = lists["v"][0]
    out["v_t_all"] = torch.stack(lists["v"])
    out["x_t_all"] = torch.stack(lists["x_in"][1:] + [actions])
    if not pi05:
        out["timesteps"] = torch.stack(lists["t"])
    out["actions"] = actions
    late = ["siglip_layer0_in", "siglip_layer0_out", "vlm_layer0_in", "vlm_layer0_out", "vlm_layer0_rope_cos",
            "vlm_layer0_rope_sin"]
    if not pi05:
        late += ["expert_layer0_step0_in", "expert_layer0_step0_out", "expert_layer0_step0_rope_cos",
                 "expert_layer0_step0_rope_sin", "suffix_action_time_in_step0"]
    for k in late:
        out[k] = rec[k]
    out.update(component_tensors(model, seed, rmsnorm_in, adarms_in, adarms_cond_in))
    if pi05:
        _check_gated_residuals(out)
    return actions, {k: v.contiguous().clone() for k, v in out.items()}


# π0.5 expert layer 0 at denoise step 0, in the shipped fixtures' order.
PI05_EXPERT_LAYER0 = [
    "adarms_mod_layer0_input_step0", "adarms_mod_layer0_post_attn_step0", "adarms_mod_final_norm_step0",
    "expert_layer0_step0_in", "expert_layer0_step0_input_norm_out", "expert_layer0_step0_input_norm_gate",
    "expert_layer0_step0_attn_out", "expert_layer0_step0_post_attn_norm_out",
    "expert_layer0_step0_post_attn_norm_gate", "expert_layer0_step0_mlp_out", "expert_layer0_step0_out",
    "expert_layer0_step0_rope_cos", "expert_layer0_step0_rope_sin",
]


def _pi05_hooks(model, expert, once, lists) -> list:
    """Forward hooks for π0.5's time conditioning and the adaRMS internals of expert layer 0 (the
    first call of each is denoise step 0)."""
    hooks = [
        model.time_mlp_in.register_forward_pre_hook(lambda m, a: lists["time_emb"].append(a[0].detach().clone())),
        model.time_mlp_out.register_forward_pre_hook(lambda m, a: lists["time_hidden"].append(a[0].detach().clone())),
    ]
    layer = expert.layers[0]
    for module, name in ((layer.input_layernorm.dense, "adarms_mod_layer0_input_step0"),
                         (layer.post_attention_layernorm.dense, "adarms_mod_layer0_post_attn_step0"),
                         (expert.norm.dense, "adarms_mod_final_norm_step0")):
        hooks.append(module.register_forward_hook(lambda m, a, o, name=name: once(name, o)))

    def norm_hook(prefix):
        def hook(m, a, o):
            once(f"{prefix}_out", o[0])
            once(f"{prefix}_gate", o[1])
        return hook
    hooks.append(layer.input_layernorm.register_forward_hook(norm_hook("expert_layer0_step0_input_norm")))
    hooks.append(layer.post_attention_layernorm.register_forward_hook(norm_hook("expert_layer0_step0_post_attn_norm")))
    hooks.append(layer.self_attn.register_forward_hook(lambda m, a, o: once("expert_layer0_step0_attn_out", o[0])))
    hooks.append(layer.mlp.register_forward_hook(lambda m, a, o: once("expert_layer0_step0_mlp_out", o)))
    return hooks


def _check_gated_residuals(out: dict[str, torch.Tensor]) -> None:
    """The captured layer-0 pieces must compose, through LeRobot's own `_gated_residual`, to the captured
    layer output bit for bit (otherwise a hook caught the wrong call)."""
    from lerobot.policies.pi_gemma import _gated_residual

    p = "expert_layer0_step0_"
    x1 = _gated_residual(out[p + "in"], out[p + "attn_out"], out[p + "input_norm_gate"])
    x2 = _gated_residual(x1, out[p + "mlp_out"], out[p + "post_attn_norm_gate"])
    if not torch.equal(x2, out[p + "out"]):
        raise SystemExit("expert layer 0: in + attn_out*gate1 + mlp_out*gate2 != out")


RMS_WEIGHT = "model.paligemma_with_expert.paligemma.model.language_model.layers.0.input_layernorm.weight"


def component_tensors(model, seed: int, x: torch.Tensor | None = None, ada_x: torch.Tensor | None = None,
                      ada_cond: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Small stand-alone checks: one RMSNorm, (π0.5) one adaRMSNorm of expert layer 0, and the
    sinusoidal time embedding."""
    lm = model.paligemma_with_expert.paligemma.model.language_model
    hidden_dtype = lm.layers[0].self_attn.q_proj.weight.dtype
    if x is None:
        g = torch.Generator().manual_seed(seed + 7)
        x = torch.randn(1, 7, lm.config.hidden_size, generator=g).to(hidden_dtype)
    with torch.no_grad():
        y, _ = lm.layers[0].input_layernorm(x)
    out = {"rmsnorm_in": x, "rmsnorm_out": y}
    if hasattr(model, "time_mlp_in"):
        expert = model.paligemma_with_expert.gemma_expert.model
        norm = expert.layers[0].input_layernorm
        if ada_x is None or ada_cond is None:
            g = torch.Generator().manual_seed(seed + 8)
            ada_x = torch.randn(1, 7, norm.dim, generator=g).to(expert.layers[0].self_attn.q_proj.weight.dtype)
            ada_cond = torch.randn(1, norm.cond_dim, generator=g)
        with torch.no_grad():
            ada_out, ada_gate = norm(ada_x, cond=ada_cond)
        out.update(adarms_in=ada_x, adarms_cond_in=ada_cond, adarms_out=ada_out, adarms_gate=ada_gate)
    width = model.action_in_proj.out_features
    t = torch.tensor([1.0, 0.3], dtype=torch.float32)
    emb = create_sinusoidal_pos_embedding(t, width, min_period=model.config.min_period,
                                          max_period=model.config.max_period, device=t.device)
    out.update({"time_emb_f64": emb, "time_emb_t1_0": emb[0].to(torch.float32),
                "time_emb_t0_3": emb[1].to(torch.float32)})
    return out
