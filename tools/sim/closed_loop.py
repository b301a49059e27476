#!/usr/bin/env python3
"""Closed loop: gym-aloha AlohaTransferCube driven by `pi0 serve` through the real openpi client.

    MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa /work/venvs/aloha/bin/python tools/sim/closed_loop.py \
        [--pi0 .build/debug/pi0] [--checkpoint Sources/pi0/Resources/DemoCheckpoint] [--port 0] \
        [--url ws://HOST:PORT]  [--steps 100] [--action-horizon 10] [--wrists] [--out-dir DIR]

Without --url the script starts `pi0 serve --checkpoint DIR --port P --layout aloha` itself (port 0: any free
port, read back from the server's "listening on ws://…" line) and stops it at the end; with --url it talks
to a server that is already running. Each control step builds openpi's ALOHA observation
("state" (14,) float32 = agent_pos, "images": {"cam_high": uint8 CHW 3×224×224 (+ "cam_left_wrist",
"cam_right_wrist" with --wrists)}, "prompt"), asks openpi_client's ActionChunkBroker (a new inference every
--action-horizon steps, as openpi's examples/aloha_sim does with 10) and steps the env with the action
(14 absolute joint targets, grippers 0 closed … 1 open).

Writes to --out-dir: contact_sheet.png (the top camera every --sheet-every steps), latency.json (per
inference: client round trip and the server's own timings; per control step: all steps, steps that
triggered an inference, steps served from the chunk; p50/p95/max in ms), steps.jsonl (one line per step)
and, when the script started the server, server.log.

Speed: gym-aloha's task renders three 640×480 cameras on every env.step although the env returns only
`top`; we replace the task's get_observation so that it renders only the cameras we send (same pixels,
≈3× faster with Mesa on a CPU). Pass --stock-render to keep gym-aloha's own.
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
from PIL import Image, ImageDraw

import gymnasium as gym
import gym_aloha  # noqa: F401  (registers the envs)
from openpi_client import action_chunk_broker, base_policy, image_tools, websocket_client_policy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WRISTS = {"cam_left_wrist": "left_wrist", "cam_right_wrist": "right_wrist"}


class TimedPolicy(base_policy.BasePolicy):
    """Wraps the websocket client: records every inference's round trip and the server's timings."""

    def __init__(self, inner):
        self.inner = inner
        self.records = []

    def infer(self, obs):
        t0 = time.perf_counter()
        result = self.inner.infer(obs)
        ms = 1000 * (time.perf_counter() - t0)
        self.records.append({"round_trip_ms": ms,
                             "server_infer_ms": result.get("server_timing", {}).get("infer_ms"),
                             "policy_infer_ms": result.get("policy_timing", {}).get("infer_ms"),
                             "actions_shape": list(np.shape(result["actions"]))})
        return result

    def reset(self):
        self.inner.reset()


def start_server(args):
    cmd = [args.pi0, "serve", "--checkpoint", args.checkpoint, "--port", str(args.port), "--layout", "aloha",
           "--seed", str(args.seed)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    print("starting:", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    deadline = time.time() + args.server_timeout
    url = None
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                sys.exit(f"pi0 serve exited with {proc.returncode} before listening")
            continue
        print("  server:", line.rstrip(), flush=True)
        m = re.search(r"listening on (ws://\S+)", line)
        if m:
            url = m.group(1)
            break
    if url is None:
        proc.terminate()
        sys.exit(f"pi0 serve did not report a listening address within {args.server_timeout} s")
    # Keep draining the server's output into OUT_DIR/server.log so that it never blocks on a full pipe
    # and a crash can be read afterwards.
    log = open(os.path.join(args.out_dir, "server.log"), "w")

    def drain():
        for text in proc.stdout:
            log.write(text)
            log.flush()

    threading.Thread(target=drain, daemon=True).start()
    return proc, url


def make_env(args):
    env = gym.make("gym_aloha/AlohaTransferCube-v0", obs_type="pixels_agent_pos")
    cams = ["top"] + (list(WRISTS.values()) if args.wrists else [])
    if not args.stock_render:
        task = env.unwrapped._env.task

        def get_observation(physics):   # gym_aloha.tasks.sim.BimanualViperXTask.get_observation, fewer cameras
            obs = collections.OrderedDict()
            obs["qpos"] = task.get_qpos(physics)
            obs["qvel"] = task.get_qvel(physics)
            obs["env_state"] = task.get_env_state(physics)
            obs["images"] = {c: physics.render(height=480, width=640, camera_id=c) for c in cams}
            task.last_images = obs["images"]   # the env returns only "top"; the wrists are read from here
            return obs

        task.get_observation = get_observation
    return env


def openpi_observation(env, obs, args):
    """openpi's ALOHA layout, images resized with pad to 224×224 as openpi's aloha_sim example does."""
    def chw(img):
        return np.ascontiguousarray(image_tools.convert_to_uint8(image_tools.resize_with_pad(img, 224, 224)).transpose(2, 0, 1))

    images = {"cam_high": chw(obs["pixels"]["top"])}
    if args.wrists:
        task, physics = env.unwrapped._env.task, env.unwrapped._env.physics
        for key, cam in WRISTS.items():
            last = getattr(task, "last_images", {})
            images[key] = chw(last[cam] if cam in last else physics.render(height=480, width=640, camera_id=cam))
    return {"state": obs["agent_pos"].astype(np.float32), "images": images, "prompt": args.prompt}


def stats(values):
    if not values:
        return None
    v = np.asarray(values, dtype=np.float64)
    return {"n": int(v.size), "p50_ms": float(np.percentile(v, 50)), "p95_ms": float(np.percentile(v, 95)),
            "max_ms": float(v.max()), "mean_ms": float(v.mean())}


def contact_sheet(frames, path, cols=5):
    """frames: [(step, HWC uint8 224×224)] → a grid with the step written under each frame."""
    # Drop the black bars resize_with_pad added above and below the 4:3 top view (rows black in every frame).
    lit = np.flatnonzero(np.any(np.stack([f for _, f in frames]) > 0, axis=(0, 2, 3)))
    top, bottom = (int(lit[0]), int(lit[-1]) + 1) if lit.size else (0, frames[0][1].shape[0])
    side, height, label = frames[0][1].shape[1], bottom - top, 16
    cols = max(1, min(cols, len(frames)))
    rows = (len(frames) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * side, rows * (height + label)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (step, img) in enumerate(frames):
        x, y = (i % cols) * side, (i // cols) * (height + label)
        sheet.paste(Image.fromarray(np.ascontiguousarray(img[top:bottom])), (x, y))
        draw.text((x + 4, y + height + 2), f"step {step}", fill="black")
    sheet.save(path, optimize=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="an already running openpi-protocol server, e.g. ws://127.0.0.1:8000")
    ap.add_argument("--pi0", default=os.path.join(ROOT, ".build", "debug", "pi0"), help="the pi0 executable")
    ap.add_argument("--checkpoint", default=os.path.join(ROOT, "Sources", "pi0", "Resources", "DemoCheckpoint"))
    ap.add_argument("--port", type=int, default=0, help="port for the server we start (0: any free one)")
    ap.add_argument("--threads", type=int, help="pi0 serve --threads")
    ap.add_argument("--server-timeout", type=float, default=300, help="seconds to wait for the server to listen")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--action-horizon", type=int, default=10, help="actions used from each chunk before asking again")
    ap.add_argument("--seed", type=int, default=0, help="env reset seed (cube position) and the server's noise seed")
    ap.add_argument("--prompt", default="transfer the cube")
    ap.add_argument("--wrists", action="store_true", help="also send cam_left_wrist and cam_right_wrist")
    ap.add_argument("--stock-render", action="store_true", help="keep gym-aloha's three-camera rendering per step")
    ap.add_argument("--sheet-every", type=int, default=10)
    ap.add_argument("--out-dir", default=os.path.join(tempfile.gettempdir(), "pi0_closed_loop"),
                    help="where the contact sheet and latency figures go (default: TMPDIR/pi0_closed_loop)")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)

    server = None
    url = args.url
    if url is None:
        server, url = start_server(args)
    try:
        env = make_env(args)
        obs, _ = env.reset(seed=args.seed)
        client = websocket_client_policy.WebsocketClientPolicy(host=url)
        print("server metadata:", client.get_server_metadata(), flush=True)
        timed = TimedPolicy(client)
        broker = action_chunk_broker.ActionChunkBroker(timed, action_horizon=args.action_horizon)
        steps, frames, successes, max_reward = [], [], 0, 0.0
        for t in range(args.steps):
            request = openpi_observation(env, obs, args)
            if t % args.sheet_every == 0 or t == args.steps - 1:
                frames.append((t, np.ascontiguousarray(request["images"]["cam_high"].transpose(1, 2, 0))))
            n = len(timed.records)
            t0 = time.perf_counter()
            action = np.asarray(broker.infer(request)["actions"], dtype=np.float64)
            control_ms = 1000 * (time.perf_counter() - t0)
            triggered = len(timed.records) > n
            t1 = time.perf_counter()
            obs, reward, terminated, truncated, info = env.step(action)
            sim_ms = 1000 * (time.perf_counter() - t1)
            max_reward = max(max_reward, float(reward))
            successes += bool(info.get("is_success"))
            steps.append({"step": t, "control_ms": control_ms, "inference": triggered, "sim_ms": sim_ms,
                          "reward": float(reward), "action": [round(float(a), 5) for a in action]})
            if triggered or t % 10 == 0:
                print(f"step {t:4d}  {'infer' if triggered else 'chunk'}  {control_ms:8.1f} ms  sim {sim_ms:7.1f} ms  "
                      f"reward {reward}", flush=True)
            if terminated or truncated:
                break
        contact_sheet(frames, os.path.join(args.out_dir, "contact_sheet.png"))
        report = {
            "env": "gym_aloha/AlohaTransferCube-v0", "seed": args.seed, "steps": len(steps), "url": url,
            "checkpoint": None if args.url else os.path.abspath(args.checkpoint), "prompt": args.prompt,
            "action_horizon": args.action_horizon, "cameras": list(request["images"].keys()),
            "render": "stock (3 cameras/step)" if args.stock_render else "only the cameras sent",
            "max_reward": max_reward, "success_steps": successes,
            "inference": {"round_trip": stats([r["round_trip_ms"] for r in timed.records]),
                          "server_infer": stats([r["server_infer_ms"] for r in timed.records if r["server_infer_ms"] is not None]),
                          "policy_infer": stats([r["policy_infer_ms"] for r in timed.records if r["policy_infer_ms"] is not None]),
                          "actions_shape": timed.records[0]["actions_shape"] if timed.records else None},
            "control_step": {"all": stats([s["control_ms"] for s in steps]),
                             "with_inference": stats([s["control_ms"] for s in steps if s["inference"]]),
                             "from_chunk": stats([s["control_ms"] for s in steps if not s["inference"]])},
            "sim_step": stats([s["sim_ms"] for s in steps]),
            "inferences": timed.records,
        }
        with open(os.path.join(args.out_dir, "latency.json"), "w") as f:
            json.dump(report, f, indent=1)
        with open(os.path.join(args.out_dir, "steps.jsonl"), "w") as f:
            for s in steps:
                f.write(json.dumps(s) + "\n")
        inf, ctl = report["inference"]["round_trip"], report["control_step"]["all"]
        print(f"{len(steps)} steps, {len(timed.records)} inferences; inference round trip p50 {inf['p50_ms']:.1f} / "
              f"p95 {inf['p95_ms']:.1f} / max {inf['max_ms']:.1f} ms; control step p50 {ctl['p50_ms']:.2f} / "
              f"p95 {ctl['p95_ms']:.1f} / max {ctl['max_ms']:.1f} ms; max reward {max_reward}")
        print("wrote", os.path.join(args.out_dir, "contact_sheet.png"), "and latency.json")
    except Exception:
        if server is not None and server.poll() is not None:
            print(f"pi0 serve exited with status {server.returncode}; its output is in "
                  f"{os.path.join(args.out_dir, 'server.log')}", file=sys.stderr)
        raise
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
