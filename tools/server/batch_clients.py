#!/usr/bin/env python3
"""Several openpi clients at once against a running `pi0 serve` (batching across clients).

    PYTHON tools/server/batch_clients.py --port P --clients 4 --requests 5 --out result.json [--check-alone]
        [--layout libero|aloha] [--disconnecting 1]

Each client (a thread with its own WebsocketClientPolicy) sends its own deterministic observation
`--requests` times; the result has requests per second and p50/p99 latency. With --check-alone (the
server started with a fixed --seed) each client's observation is then sent again by a lone client and
the answers are compared (max relative L2 over clients). `--disconnecting N` adds clients that send
one observation and hang up at once: the others must still be answered.
"""
import argparse
import json
import threading
import time

import numpy as np
from openpi_client import msgpack_numpy
from openpi_client import websocket_client_policy


def observation(client, layout):
    rng = np.random.default_rng(client)
    if layout == "aloha":
        return {"state": rng.uniform(-1, 1, 14).astype(np.float32),
                "images": {c: rng.integers(0, 256, (3, 224, 224), dtype=np.uint8) for c in ["cam_high", "cam_left_wrist"]},
                "prompt": ["fold the towel", "transfer the cube", "open the lid"][client % 3]}
    return {"observation/image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
            "observation/wrist_image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
            "observation/state": rng.uniform(-1, 1, 8).astype(np.float32),
            "prompt": ["pick up the bowl", "put the cup on the plate and the spoon in the drawer", "stack"][client % 3]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=5)
    ap.add_argument("--layout", default="libero")
    ap.add_argument("--disconnecting", type=int, default=0)
    ap.add_argument("--check-alone", action="store_true")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    policies = [websocket_client_policy.WebsocketClientPolicy(host="127.0.0.1", port=a.port) for _ in range(a.clients)]
    answers, latencies, errors = [None] * a.clients, [], []
    lock = threading.Lock()
    start = threading.Barrier(a.clients + a.disconnecting)

    def client(i):
        obs = observation(i, a.layout)
        start.wait()
        for _ in range(a.requests):
            t0 = time.monotonic()
            try:
                out = policies[i].infer(obs)
            except Exception as e:  # recorded, not raised: the test reports it
                with lock:
                    errors.append(f"client {i}: {e}")
                return
            with lock:
                latencies.append(time.monotonic() - t0)
            answers[i] = np.asarray(out["actions"], dtype=np.float64)

    def hang_up(i):
        p = websocket_client_policy.WebsocketClientPolicy(host="127.0.0.1", port=a.port)
        start.wait()
        p._ws.send(msgpack_numpy.Packer().pack(observation(100 + i, a.layout)))
        p._ws.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    threads += [threading.Thread(target=hang_up, args=(i,)) for i in range(a.disconnecting)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    lat = np.sort(np.asarray(latencies)) * 1000
    result = {"clients": a.clients, "requests": len(latencies), "errors": errors, "wall_s": wall,
              "requests_per_s": len(latencies) / wall if wall > 0 else None,
              "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
              "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None}
    if a.check_alone:
        rel = []
        lone = websocket_client_policy.WebsocketClientPolicy(host="127.0.0.1", port=a.port)
        for i in range(a.clients):
            alone = np.asarray(lone.infer(observation(i, a.layout))["actions"], dtype=np.float64)
            rel.append(float(np.linalg.norm(answers[i] - alone) / np.linalg.norm(alone)))
        result["rel_l2_vs_alone"] = rel
        result["distinct_answers"] = len({a.tobytes() for a in answers if a is not None})
    with open(a.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
