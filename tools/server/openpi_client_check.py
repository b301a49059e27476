#!/usr/bin/env python3
"""End-to-end check of a running PI0-Swift policy server with the real openpi client.

Uses openpi_client.websocket_client_policy.WebsocketClientPolicy (openpi-client 0.1.2) unchanged:
metadata on connect, LIBERO-like and ALOHA-like observations, the result keys and timings, the
ActionChunkBroker, and (with --expect) the action values.

  /work/venvs/openpi/bin/python tools/server/openpi_client_check.py --port 8000
  ... --expect tools/server/fake_policy_expected.json   # values of the test suite's fake policy
  ... --fake-policy-checks                            # error path: the fake policy fails on "fail"
  ... --big-mb 100 --server-pid PID                   # large observations, server RSS after each

The expectation file: {"state": [...], "actions": [[...], ...]} — the observation state to send and
the actions the policy must answer (compared with rtol 1e-6).
"""
import argparse
import json
import sys
import time

import numpy as np
from openpi_client import action_chunk_broker
from openpi_client import websocket_client_policy


def rss_mib(pid, field="VmRSS"):
    """Resident memory (VmRSS) or its peak so far (VmHWM) of a process, in MiB."""
    if pid is None:
        return None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return None


def libero_obs(rng, state):
    return {
        "observation/image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
        "observation/wrist_image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
        "observation/state": np.asarray(state, dtype=np.float32),
        "prompt": "pick up the black bowl and place it on the plate",
    }


def aloha_obs(rng, state):
    cams = ["cam_high", "cam_low", "cam_left_wrist", "cam_right_wrist"]
    return {
        "state": np.asarray(state, dtype=np.float32),
        "images": {c: rng.integers(0, 256, (3, 224, 224), dtype=np.uint8) for c in cams},
        "prompt": "fold the towel",
    }


def check_result(result, expected_actions=None):
    assert isinstance(result, dict), type(result)
    actions = result["actions"]
    assert isinstance(actions, np.ndarray) and actions.ndim == 2, (type(actions), getattr(actions, "shape", None))
    assert isinstance(result["policy_timing"]["infer_ms"], float)
    assert isinstance(result["server_timing"]["infer_ms"], float)
    if expected_actions is not None:
        np.testing.assert_allclose(actions, np.asarray(expected_actions, dtype=np.float32), rtol=1e-6)
    return actions


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--expect", help="JSON file with 'state' and expected 'actions'")
    ap.add_argument("--state-dim", type=int, default=8, help="state size when no --expect is given")
    ap.add_argument("--requests", type=int, default=20, help="timed requests")
    ap.add_argument("--fake-policy-checks", action="store_true", help="also check the error path (fake policy only)")
    ap.add_argument("--big-mb", type=int, default=0, help="also send observations with an extra array of this many MB")
    ap.add_argument("--server-pid", type=int, default=None, help="report this process's RSS")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    expected = None
    state = np.linspace(-1, 1, args.state_dim).tolist()
    if args.expect:
        with open(args.expect) as f:
            expected = json.load(f)
        state = expected["state"]

    policy = websocket_client_policy.WebsocketClientPolicy(host=args.host, port=args.port, api_key=args.api_key)
    print("metadata:", policy.get_server_metadata())

    first = policy.infer(libero_obs(rng, state))
    actions = check_result(first, expected and expected["actions"])
    assert "prev_total_ms" not in first["server_timing"], "no prev_total_ms on a connection's first request"
    print(f"LIBERO-like: actions {actions.dtype} {actions.shape}; result keys {list(first)}")

    second = policy.infer(aloha_obs(rng, state))
    check_result(second, expected and expected["actions"])
    assert isinstance(second["server_timing"]["prev_total_ms"], float)
    print("ALOHA-like (nested images map, CHW): ok")

    broker = action_chunk_broker.ActionChunkBroker(policy, action_horizon=actions.shape[0])
    steps = [broker.infer(libero_obs(rng, state))["actions"] for _ in range(actions.shape[0] + 1)]
    assert all(s.shape == (actions.shape[1],) for s in steps)
    print(f"ActionChunkBroker: {len(steps)} steps of shape {steps[0].shape}")

    if args.server_pid:
        print(f"server RSS {rss_mib(args.server_pid):.0f} MiB, peak {rss_mib(args.server_pid, 'VmHWM'):.0f} MiB")
    latencies = []
    obs = libero_obs(rng, state)
    for _ in range(args.requests):
        t0 = time.perf_counter()
        check_result(policy.infer(obs), expected and expected["actions"])
        latencies.append((time.perf_counter() - t0) * 1000)
    if latencies:
        lat = np.array(latencies)
        print(f"{args.requests} LIBERO-like requests (2x224x224x3 uint8): round trip p50 {np.percentile(lat, 50):.2f} ms, "
              f"p95 {np.percentile(lat, 95):.2f} ms, max {lat.max():.2f} ms")

    if args.big_mb:
        big = libero_obs(rng, state)
        big["extra"] = np.zeros(args.big_mb * 1_000_000, np.uint8)
        for i in range(3):
            t0 = time.perf_counter()
            check_result(policy.infer(big), expected and expected["actions"])
            ms = (time.perf_counter() - t0) * 1000
            rss, peak = rss_mib(args.server_pid), rss_mib(args.server_pid, "VmHWM")
            print(f"{args.big_mb} MB observation {i}: round trip {ms:.0f} ms"
                  + (f", server RSS {rss:.0f} MiB (peak so far {peak:.0f} MiB)" if rss else ""))
    if args.server_pid:
        print(f"server RSS at the end: {rss_mib(args.server_pid):.0f} MiB, peak {rss_mib(args.server_pid, 'VmHWM'):.0f} MiB")

    if args.fake_policy_checks:
        bad = websocket_client_policy.WebsocketClientPolicy(host=args.host, port=args.port, api_key=args.api_key)
        try:
            bad.infer({"fail": True, "observation/state": np.zeros(2, np.float32)})
            raise AssertionError("the fake policy should have failed")
        except RuntimeError as e:
            assert "FakePolicy failure requested" in str(e), str(e)
            print("error path: RuntimeError with the server's text, as upstream")
        # The server still serves the first connection.
        check_result(policy.infer(libero_obs(rng, state)), expected and expected["actions"])

    print("OK: openpi-client talks to the server")
    return 0


if __name__ == "__main__":
    sys.exit(main())
