#!/usr/bin/env python3
"""Talks to a running `pi0 serve` with the real openpi client and records what it got.

    PYTHON tools/server/pi0_serve_e2e.py --port P --layout libero|aloha --out result.json

Observations are deterministic: camera k's pixel (channel c, row y, column x) is (7x + 13y + 29c + 31k) % 256,
so the Swift test can rebuild the same observation and compare the actions with the library's own.
"""
import argparse
import json

import numpy as np
from openpi_client import websocket_client_policy


def pattern(k, chw):
    c, y, x = np.meshgrid(np.arange(3), np.arange(224), np.arange(224), indexing="ij")
    img = ((7 * x + 13 * y + 29 * c + 31 * k) % 256).astype(np.uint8)   # CHW
    return img if chw else np.ascontiguousarray(img.transpose(1, 2, 0))


def observation(layout):
    if layout == "libero":
        return {"observation/image": pattern(0, False), "observation/wrist_image": pattern(1, False),
                "observation/state": np.linspace(-0.5, 0.5, 8).astype(np.float32),
                "prompt": "pick up the red cube and place it in the blue bowl"}
    return {"images": {"cam_high": pattern(0, True), "cam_left_wrist": pattern(1, True)},
            "state": np.linspace(-0.3, 0.6, 14).astype(np.float32), "prompt": "transfer the red cube"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--layout", required=True, choices=["libero", "aloha"])
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    client = websocket_client_policy.WebsocketClientPolicy(host="127.0.0.1", port=a.port)
    meta = client.get_server_metadata()
    obs = observation(a.layout)
    results = [client.infer(obs) for _ in range(2)]
    r = results[0]
    assert np.array_equal(results[0]["actions"], results[1]["actions"]), "same observation, same seed: same actions"
    assert "prev_total_ms" in results[1]["server_timing"]
    out = {"metadata": meta, "actions": r["actions"].astype(np.float64).tolist(), "dtype": str(r["actions"].dtype),
           "policy_infer_ms": r["policy_timing"]["infer_ms"], "server_infer_ms": r["server_timing"]["infer_ms"],
           "state": obs.get("observation/state", obs.get("state")).tolist(), "prompt": obs["prompt"]}
    with open(a.out, "w") as f:
        json.dump(out, f)
    print(f"{a.layout}: actions {r['actions'].shape} {r['actions'].dtype}, infer {r['policy_timing']['infer_ms']:.1f} ms")


if __name__ == "__main__":
    main()
