#!/usr/bin/env python
"""Differential check of `pi0 prompt` against LeRobot 0.6.1's own π0.5 prompt code, on random and adversarial
inputs (the golden cases in Tests/PI0RuntimeTests/Fixtures/pi05_prompt_state are fixed; this generates more).

1. `pi0 prompt --model pi05 --task T --normalized-state S --json` against
   `Pi05PrepareStateTokenizerProcessorStep` (policies/pi05/processor_pi05.py): float32 states at every bin
   edge and one ulp either side, ±0, ±1, subnormals, ±float32 max, 1 to 64 dims; tasks with every character
   Python's str.strip removes, near misses (U+200B, U+FEFF, …), underscores, "\\r\\n", tabs, emoji, CJK,
   combining marks, an empty and an all-whitespace task, tasks starting with "-".
2. `pi0 prompt --checkpoint DIR --task T --state RAW --json` against LeRobot's pre-processor steps (rename →
   batch → relative → NormalizerProcessorStep → Pi05PrepareStateTokenizerProcessorStep) saved into a copy of
   the tiny π0.5 fixture by `save_pretrained`, for QUANTILES, MEAN_STD, MIN_MAX, QUANTILE10 and IDENTITY, with
   q01 == q99, a one-ulp range, std 0 and raw states that normalise to about every bin edge. The tokenizer
   step is stubbed (the PaliGemma tokenizer is not available offline), so token ids are not compared.

    /work/venvs/lerobot/bin/python tools/reference/pi05_prompt_diff.py PATH/TO/pi0
"""
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import lerobot.policies.pi05.processor_pi05 as pp
from lerobot.configs import FeatureType, NormalizationMode, PolicyFeature
from lerobot.lerobot_types import TransitionKey
from lerobot.policies.pi05.configuration_pi05 import PI05Config
from lerobot.processor import ProcessorStep, ProcessorStepRegistry
from lerobot.processor.converters import create_transition
from lerobot.utils.constants import OBS_STATE

PI0 = sys.argv[1]
FIXTURE = Path(__file__).resolve().parents[2] / "Tests/PI0Tests/Fixtures/pi05_tiny_1cam"
f32 = np.float32
EDGES = np.linspace(-1, 1, 257)[:-1]
failures = 0


def fmt(values):
    """Exact decimal text of float32 values (the float64 repr of each, which parses back to the same float32)."""
    return ",".join(("-0.0" if np.signbit(v) else "0.0") if v == 0 else repr(float(v)) for v in values)


def pi0_prompt(*args):
    p = subprocess.run([PI0, "prompt", *args, "--json"], capture_output=True, text=True)
    return (json.loads(p.stdout), None) if p.returncode == 0 else (None, p.stderr.strip())


def check(label, want_prompt, want_state, got, err):
    global failures
    if err is not None:
        failures += 1
        print(f"FAIL {label}: {err[:300]}")
        return
    bins = (np.digitize(want_state, EDGES) - 1).tolist()
    same_state = [f32(v) for v in got["normalized_state"]] == [f32(v) for v in want_state]
    if got["prompt"] != want_prompt or got["bins"] != bins or not same_state:
        failures += 1
        print(f"MISMATCH {label}\n  lerobot {want_prompt!r}\n  pi0     {got['prompt']!r}")


def model_mode(rng):
    step = pp.Pi05PrepareStateTokenizerProcessorStep()
    edges32 = EDGES.astype(f32)
    around = [v for e in list(edges32) + [f32(1)] for v in (e, np.nextafter(e, f32(-2)), np.nextafter(e, f32(2)))]
    states = [around[i:i + 40] for i in range(0, len(around), 40)]
    big = np.finfo(np.float32).max
    states += [[f32(-0.0)], [f32(1e-30)], [f32(-1e-45)], [big, -big], [f32(0.9921875)], [f32(-1.0000001)],
               list(rng.uniform(-1, 1, 32).astype(f32)), list(rng.uniform(-1.2, 1.2, 64).astype(f32))]
    states += [list(rng.uniform(-1.05, 1.05, rng.integers(1, 40)).astype(f32)) for _ in range(15)]
    ws = [c for c in map(chr, range(0x110000)) if c.isspace()]
    near = ["\u200b", "\u180e", "\ufeff", "\u2060", "\u00ad", "\u200c", "\u200d"]
    tasks = ["pick up the cube", "", " ", "\t\n\r\x0b\x0c", "".join(ws), "__a__b___", "a\r\nb", "tab\there",
             "\u3000拿起方块\u3000", "🤖 👍🏽 🇫🇷", "e\u0301", " \u0301x", "multi\n\nline\n", "\n_\n", "-dash",
             "--json", "quote \" ' \\", "Task: x, State: 1;\nAction: ", "\u2028\u2029\u0085", "\x1c\x1fsep\x1f"]
    tasks += [w + "x" + w for w in ws] + [n + "y" + n for n in near]
    cases = [(t, states[i % len(states)]) for i, t in enumerate(tasks)] + [("pick_up the\ncube", s) for s in states]
    for task, state in cases:
        tr = {TransitionKey.OBSERVATION: {OBS_STATE: torch.from_numpy(np.array([state], dtype=f32))},
              TransitionKey.COMPLEMENTARY_DATA: {"task": [task]}}
        want = step(tr)[TransitionKey.COMPLEMENTARY_DATA]["task"][0]
        # "--task VALUE" (two arguments): "--task=VALUE" cannot carry a value that starts with a combining
        # mark or a joiner, which ArgumentParser's "=" split (on Characters) does not see.
        got, err = pi0_prompt("--model", "pi05", "--task", task, "--normalized-state", fmt(state))
        check(f"model task={task!r}", want, np.array(state, dtype=f32), got, err)
    return len(cases)


@ProcessorStepRegistry.register(name="pi05_prompt_diff_tokenizer_stub")
@dataclass
class TokenizerStub(ProcessorStep):
    def __call__(self, transition):
        return transition

    def transform_features(self, features):
        return features


def checkpoint_mode(rng, workdir):
    pp.TokenizerProcessorStep = lambda **kw: TokenizerStub()
    D = 32
    q01 = rng.uniform(-2, 0, D).astype(f32)
    q99 = (q01 + rng.uniform(0.01, 3, D)).astype(f32)
    q01[0] = q99[0] = f32(0.25)                   # q01 == q99: the eps denominator
    q99[2] = np.nextafter(q01[2], f32(10))        # a one-ulp range
    q01[3], q99[3] = f32(-1e30), f32(1e30)
    mean = rng.normal(0, 1, D).astype(f32)
    std = rng.uniform(0, 2, D).astype(f32)
    std[0], std[1] = 0, f32(1e-9)
    one = {"q01": q01, "q99": q99, "q10": q01, "q90": q99, "mean": mean, "std": std, "min": q01, "max": q99}
    stats = {k: {s: torch.from_numpy(v) for s, v in one.items()} for k in (OBS_STATE, "action")}
    edges32 = EDGES.astype(f32)
    n = 0
    for mode in ["QUANTILES", "MEAN_STD", "MIN_MAX", "QUANTILE10", "IDENTITY"]:
        cfg = PI05Config(device="cpu")
        cfg.input_features = {"observation.images.cam0": PolicyFeature(FeatureType.VISUAL, (3, 56, 56)),
                              OBS_STATE: PolicyFeature(FeatureType.STATE, (D,))}
        cfg.output_features = {"action": PolicyFeature(FeatureType.ACTION, (D,))}
        cfg.normalization_mapping = {"VISUAL": NormalizationMode.IDENTITY, "STATE": NormalizationMode(mode),
                                     "ACTION": NormalizationMode(mode)}
        pre, post = pp.make_pi05_pre_post_processors(cfg, dataset_stats=stats)
        ckpt = Path(workdir) / mode
        shutil.copytree(FIXTURE, ckpt)
        pre.save_pretrained(ckpt)
        post.save_pretrained(ckpt)
        raws = []
        for k in range(0, 256, 5):
            e = edges32[(np.arange(D) + k) % 256]
            x = (e * (std + f32(1e-8)) + mean) if mode == "MEAN_STD" else ((e + f32(1)) * (q99 - q01) / f32(2) + q01)
            x = x.astype(f32)
            raws += [x, np.nextafter(x, f32(np.inf)), np.nextafter(x, f32(-np.inf))]
        raws += [q01.copy(), q99.copy(), np.full(D, f32(-0.0)), np.full(D, f32(1e30))]
        raws += [rng.normal(0, 2, D).astype(f32) for _ in range(10)]
        for x in raws:
            tr = create_transition(observation={OBS_STATE: torch.from_numpy(x.copy())},
                                   complementary_data={"task": "pick_up the cube "})
            for s in pre.steps[:5]:
                tr = s(tr)
            want = tr[TransitionKey.COMPLEMENTARY_DATA]["task"][0]
            norm = tr[TransitionKey.OBSERVATION][OBS_STATE][0].numpy()
            got, err = pi0_prompt("--checkpoint", str(ckpt), "--task", "pick_up the cube ", "--state", fmt(x))
            if err is not None and not np.all(np.isfinite(norm)):
                continue  # LeRobot normalised to NaN/Inf; pi0 refuses such a state by design
            check(f"checkpoint {mode} raw={x[:3]}…", want, norm, got, err)
            n += 1
    return n


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    n1 = model_mode(rng)
    with tempfile.TemporaryDirectory() as tmp:
        n2 = checkpoint_mode(rng, tmp)
    print(f"--model pi05: {n1} cases; --checkpoint: {n2} cases; {failures} failures")
    sys.exit(1 if failures else 0)
