#!/usr/bin/env python
"""Make one golden π0.5 case with LeRobot 0.6.1 at tiny, command-line dimensions.

    /work/venvs/lerobot/bin/python tools/reference/make_pi05_case.py --out DIR --case NAME --seed S [dims...]

Same steps as make_case.py (whose code this runs with policy "pi05"): build `PI05Policy(PI05Config)`
with the tiny sizes (tiny_pi0.tiny_lerobot patching `modeling_pi05`), fill it with seeded random
weights (adaRMS `dense` layers scaled as in the shipped π0.5 fixtures), save `model.safetensors` with
the real LeRobot key names (`model.` prefix, token embedding only as `…paligemma.lm_head.weight`, BF16
tensors when --dtype bfloat16) and `config.json` (LeRobot's own `_save_pretrained`,
`tokenizer_max_length` = --lang-len as in the shipped cases), load the folder back with
`PI05Policy.from_pretrained`, run `PI05Pytorch.sample_actions(images, img_masks, lang_tokens,
lang_masks, noise=noise)` on seeded inputs (no state: π0.5 writes it into the prompt) and store the
inputs and the intermediates (record.py: hooks and wrapped methods on LeRobot's own calls, nothing
re-implemented). Also writes `pi05_dims.json` (structure of Tests/PI0Tests/Fixtures/pi05_tiny_1cam)
and `README.md` (tensor tables and the loaded model's dtype map).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_case import main  # noqa: E402

if __name__ == "__main__":
    main(policy="pi05", script="make_pi05_case.py", doc=__doc__)
