#!/usr/bin/env python3
"""Runs pi0_client.AsyncActionChunkBroker (clients/python) against a running `pi0 serve` with the real
openpi client, with and without real-time chunking, and records what happened.

    PYTHON tools/server/rtc_broker_e2e.py --port P --out result.json [--steps 40] [--horizon 5]

Both modes see the same observation stream. The result holds, per mode: the executed actions, the
steps where a new chunk took over, the RTC fields of every request, the measured delays, and the jump
|a_t − a_{t−1}| (max over dims) at each chunk boundary. It also sends one request with a malformed
previous chunk and records the server's answer.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
from openpi_client import websocket_client_policy

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))
from pi0_client import AsyncActionChunkBroker  # noqa: E402


class Recording:
    """Wraps the websocket policy and keeps the RTC fields of each request."""

    def __init__(self, policy):
        self.policy, self.requests = policy, []

    def infer(self, obs):
        self.requests.append({k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in obs.items() if k.startswith("rtc_")})
        return self.policy.infer(obs)

    def reset(self):
        self.policy.reset()


def observation(step):
    rng = np.random.default_rng(1000 + step)
    return {"observation/image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
            "observation/wrist_image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
            "observation/state": np.linspace(-0.5, 0.5, 8).astype(np.float32) + 0.01 * step,
            "prompt": "pick up the red cube and place it in the blue bowl"}


def run(port, steps, horizon, rtc, hz):
    rec = Recording(websocket_client_policy.WebsocketClientPolicy(host="127.0.0.1", port=port))
    meta = rec.policy.get_server_metadata()
    broker = AsyncActionChunkBroker(rec, action_horizon=meta["action_horizon"], execution_horizon=horizon, rtc=rtc)
    executed, switches, last_chunk = [], [], None
    period, next_tick = 1.0 / hz, time.monotonic()
    ticks = []
    for t in range(steps):
        next_tick += period
        ticks.append(time.monotonic())
        a = broker.infer(observation(t))["actions"]
        if broker._chunk is not last_chunk:
            last_chunk = broker._chunk
            if t > 0:
                switches.append(t)
        executed.append(np.asarray(a, dtype=np.float64).tolist())
        now = time.monotonic()
        next_tick = max(next_tick, now)          # after a stall, keep the period from here on
        time.sleep(next_tick - now)
    broker.reset()
    gaps = np.diff(ticks) * 1000
    ex = np.asarray(executed)
    jumps = [float(np.abs(ex[t] - ex[t - 1]).max()) for t in switches]
    inner = [float(np.abs(ex[t] - ex[t - 1]).max()) for t in range(1, len(ex)) if t not in switches]
    return {"executed": executed, "switches": switches, "requests": rec.requests, "delays": broker.stats.delays,
            "stalls": broker.stats.stalls, "boundary_jumps": jumps, "median_step_change": float(np.median(inner)),
            "latencies_ms": [1000 * x for x in broker.stats.latencies_s],
            "period_ms": {"target": 1000 * period, "median": float(np.median(gaps)), "max": float(gaps.max())}}


def bad_request(port):
    policy = websocket_client_policy.WebsocketClientPolicy(host="127.0.0.1", port=port)
    obs = observation(0)
    obs["rtc_prev_chunk"] = np.full((10, 7), np.nan, dtype=np.float32)
    obs["rtc_inference_delay"] = 2
    try:
        policy.infer(obs)
        return {"error": None}
    except Exception as e:  # openpi-client raises on the server's text frame
        answer = {"error": str(e)}
    try:   # the same connection, a valid request
        answer["after"] = np.asarray(policy.infer(observation(1))["actions"]).shape[0]
    except Exception as e:
        answer["after_error"] = str(e)
    return answer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--horizon", type=int, default=10)
    ap.add_argument("--hz", type=float, default=10.0, help="control rate of the simulated robot loop")
    a = ap.parse_args()
    result = {"rtc": run(a.port, a.steps, a.horizon, True, a.hz), "plain": run(a.port, a.steps, a.horizon, False, a.hz),
              "bad_request": bad_request(a.port)}
    with open(a.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
