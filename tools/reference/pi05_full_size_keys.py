#!/usr/bin/env python
"""Every tensor name and shape of LeRobot 0.6.1's full-size PI05Pytorch (with the `model.` prefix the
saved checkpoints use), built on the meta device (no memory, no weights). Writes the JSON list that
Tests/PI0Tests/Fixtures/pi05_full_size_keys.json holds; `pi0 write-random-checkpoint --model pi05`
must write exactly these tensors minus the token embedding (published checkpoints store it only as the
tied `paligemma.lm_head.weight`).

    /work/venvs/lerobot/bin/python tools/reference/pi05_full_size_keys.py OUT.json
"""
import json
import sys

import torch
from lerobot.policies.pi05.configuration_pi05 import PI05Config
from lerobot.policies.pi05.modeling_pi05 import PI05Pytorch

with torch.device("meta"):
    model = PI05Pytorch(PI05Config(device="cpu"))
out = sorted(("model." + k, list(v.shape)) for k, v in model.state_dict().items())
with open(sys.argv[1], "w") as f:
    json.dump(out, f, indent=0)
print(len(out), "tensors,", sum(torch.Size(s).numel() for _, s in out), "parameters")
