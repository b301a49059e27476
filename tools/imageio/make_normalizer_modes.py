#!/usr/bin/env python3
"""Golden outputs of LeRobot's own normaliser for the modes the π0 fixtures do not use
(MIN_MAX, QUANTILES, QUANTILE10), on the stats and inputs of fixtures/policy/normalizer.

Runs lerobot 0.6.1 `NormalizerProcessorStep._apply_transform` / `UnnormalizerProcessorStep._apply_transform`
(the function every mode goes through) with norm_map {STATE: mode, ACTION: mode}, eps 1e-8, and the
float32 stats read from the pre-processor stats file. State dim 13 is constant in the dataset
(min = max = q01 = q99 = 0), so the `denom == 0 -> eps` branch is exercised.

Usage: /work/venvs/lerobot/bin/python tools/imageio/make_normalizer_modes.py [dest.safetensors]
"""
import sys

import torch
from safetensors.torch import load_file, save_file
from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature
from lerobot.processor.normalize_processor import NormalizerProcessorStep, UnnormalizerProcessorStep

SRC = "/work/shared/fixtures/policy/normalizer/"


def main(dest):
    raw = load_file(SRC + "policy_preprocessor_step_6_normalizer_processor.safetensors")
    stats = {}
    for k, v in raw.items():
        feat, stat = k.rsplit(".", 1)
        if feat in ("observation.state", "action"):
            stats.setdefault(feat, {})[stat] = v.numpy()
    cases = load_file(SRC + "cases.safetensors")
    state, actions = cases["state_raw"], cases["actions_sliced"]
    feats = {"observation.state": PolicyFeature(type=FeatureType.STATE, shape=(14,)),
             "action": PolicyFeature(type=FeatureType.ACTION, shape=(14,))}
    out = {"state_in": state, "actions_in": actions}
    for mode in (NormalizationMode.MIN_MAX, NormalizationMode.QUANTILES, NormalizationMode.QUANTILE10):
        nm = {FeatureType.STATE: mode, FeatureType.ACTION: mode}
        pre = NormalizerProcessorStep(features=feats, norm_map=nm, stats=stats, eps=1e-8)
        post = UnnormalizerProcessorStep(features=feats, norm_map=nm, stats=stats, eps=1e-8)
        out[f"state_{mode.value}"] = pre._apply_transform(state.clone(), "observation.state", FeatureType.STATE)
        out[f"actions_{mode.value}"] = post._apply_transform(actions.clone(), "action", FeatureType.ACTION, inverse=True)
    save_file({k: v.contiguous() for k, v in out.items()}, dest, metadata={"source": "lerobot 0.6.1 normalize_processor"})
    print({k: tuple(v.shape) for k, v in out.items()})


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/PI0RuntimeTests/Fixtures/normalizer/modes.safetensors")
