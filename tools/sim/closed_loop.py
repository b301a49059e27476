#!/usr/bin/env python3
"""Closed loop: gym-aloha AlohaTransferCube driven by `pi0 serve` through the real openpi client.

    MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa /work/venvs/aloha/bin/python tools/sim/closed_loop.py \
        [--pi0 .build/debug/pi0] [--checkpoint Sources/pi0/Resources/DemoCheckpoint] [--port 0] \
        [--url ws://HOST:PORT]  [--steps 100] [--action-horizon 10] [--wrists] [--out-dir DIR] \
        [--mode sync|async|rtc] [--hz HZ] [--render-size 640x480]

Without --url the script starts `pi0 serve --checkpoint DIR --port P --layout aloha` itself (port 0: any free
port, read back from the server's "listening on ws://…" line) and stops it at the end; with --url it talks
to a server that is already running. Each control step builds openpi's ALOHA observation
("state" (14,) float32 = agent_pos, "images": {"cam_high": uint8 CHW 3×224×224 (+ "cam_left_wrist",
"cam_right_wrist" with --wrists)}, "prompt"), asks openpi_client's ActionChunkBroker (a new inference every
--action-horizon steps, as openpi's examples/aloha_sim does with 10) and steps the env with the action
(14 absolute joint targets, grippers 0 closed … 1 open).

Execution modes (--mode), for comparing chunk boundaries (docs/SIMULATION_DEMO.md §4, docs/RTC.md):
  sync   openpi's ActionChunkBroker: the loop waits while the next chunk is computed (the default);
  async  pi0_client.AsyncActionChunkBroker(rtc=False): the loop keeps executing the old chunk while the next
         one is computed and enters the new one at the row that matches the steps that have passed;
  rtc    the same with real-time chunking: the unexecuted rest of the old chunk, the measured delay and the
         execution horizon go with the request and the server guides the new chunk onto the old one.
In every mode a new chunk is requested after --action-horizon actions of the current one. --hz paces the
loop at a fixed control rate (0: as fast as it goes). pi0_client comes from `pip install ./clients/python`
or, failing that, from this repository's clients/python.

Writes to --out-dir: contact_sheet.png (the top camera every --sheet-every steps), latency.json (per
inference: client round trip and the server's own timings; per control step: all steps, steps that
triggered an inference, steps served from the chunk; p50/p95/max in ms; the chunk boundaries: jumps,
control-period jitter, delays), steps.jsonl (one line per step, with the chunk and row it used),
chunks.json (every chunk the server returned, with the RTC fields of its request) and, when the script
started the server, server.log. tools/sim/rtc_figure.py draws the boundaries of several runs.

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
    """Wraps the websocket client: records every inference's round trip, the server's timings and the RTC
    fields of the request, and keeps every result (an asynchronous broker calls it from its own thread)."""

    def __init__(self, inner):
        self.inner = inner
        self.records = []
        self.results = []
        self.origin = time.perf_counter()

    def infer(self, obs):
        t0 = time.perf_counter()
        result = self.inner.infer(obs)
        t1 = time.perf_counter()
        prev = obs.get("rtc_prev_chunk")
        self.results.append(result)
        self.records.append({"sent_s": t0 - self.origin, "received_s": t1 - self.origin,
                             "round_trip_ms": 1000 * (t1 - t0),
                             "server_infer_ms": result.get("server_timing", {}).get("infer_ms"),
                             "policy_infer_ms": result.get("policy_timing", {}).get("infer_ms"),
                             "actions_shape": list(np.shape(result["actions"])),
                             "rtc_prev_steps": None if prev is None else int(np.shape(prev)[0]),
                             "rtc_inference_delay": obs.get("rtc_inference_delay"),
                             "rtc_execution_horizon": obs.get("rtc_execution_horizon")})
        return result

    def reset(self):
        self.inner.reset()


def async_broker_class():
    try:
        from pi0_client import AsyncActionChunkBroker
    except ImportError:   # not installed: use the repository's copy
        sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
        from pi0_client import AsyncActionChunkBroker
    return AsyncActionChunkBroker


def make_broker(args, timed, metadata):
    if args.mode == "sync":
        return action_chunk_broker.ActionChunkBroker(timed, action_horizon=args.action_horizon)
    chunk = int(metadata.get("action_horizon") or 50)
    return async_broker_class()(timed, action_horizon=chunk, execution_horizon=args.action_horizon,
                                rtc=args.mode == "rtc")


class ChunkTracker:
    """Which chunk (index into TimedPolicy.results) and which of its rows the broker used at each step.
    Reads the brokers' own state (openpi's ActionChunkBroker asks again after action_horizon rows, always
    from row 0; AsyncActionChunkBroker keeps the current result in _chunk and the next row in _step)."""

    def __init__(self, mode, timed, broker):
        self.mode, self.timed, self.broker = mode, timed, broker
        self.chunk, self.row = -1, -1

    def after_infer(self, requests_before):
        if self.mode == "sync":
            if len(self.timed.records) > requests_before:
                self.chunk, self.row = len(self.timed.records) - 1, 0
            else:
                self.row += 1
        else:
            current = self.broker._chunk
            self.chunk = next(i for i in range(len(self.timed.results) - 1, -1, -1) if self.timed.results[i] is current)
            self.row = self.broker._step - 1
        return self.chunk, self.row


def boundary_report(steps, results, hz):
    """What happens where a new chunk takes over (docs/SIMULATION_DEMO.md §4), and the control period."""
    actions = np.array([s["action"] for s in steps], dtype=np.float64)
    change = np.r_[np.nan, np.abs(np.diff(actions, axis=0)).max(axis=1)]   # |a_t − a_{t−1}|, max over dims
    switches = [s["step"] for s in steps if s["switch"]]
    inside = [change[t] for t in range(1, len(steps)) if not steps[t]["switch"]]
    jumps = [float(change[t]) for t in switches]
    # Switch gap: the new chunk's action at step t against the row the old chunk would have given at step t
    # (0 when consecutive chunks agree where they meet).
    gaps = []
    for t in switches:
        old = np.asarray(results[steps[t - 1]["chunk"]]["actions"], dtype=np.float64)
        if steps[t - 1]["row"] + 1 < len(old):
            gaps.append(float(np.abs(actions[t] - old[steps[t - 1]["row"] + 1]).max()))
    # How far each new chunk is from what the robot executed while it was computed: rows 0 … row−1 of the
    # chunk that took over at step t with row `row` belong to steps t−row … t−1.
    overlap = []
    for t in switches:
        k, row = steps[t]["chunk"], steps[t]["row"]
        if row > 0:
            new = np.asarray(results[k]["actions"], dtype=np.float64)[:row]
            overlap.append(float(np.abs(new - actions[t - row:t]).max(axis=1).mean()))
    ticks = np.array([s["tick_s"] for s in steps])
    periods = 1000 * np.diff(ticks[1:])   # from step 1 on: step 0 waits for the first chunk in every mode
    target = 1000.0 / hz if hz > 0 else None

    def summary(v):
        v = np.asarray(v, dtype=np.float64)
        return None if v.size == 0 else {"n": int(v.size), "mean": float(v.mean()), "median": float(np.median(v)),
                                         "p99": float(np.percentile(v, 99)), "max": float(v.max())}

    return {"switch_steps": switches, "jumps": jumps, "jump": summary(jumps),
            "within_chunk_change": summary(inside),
            "jump_mean_over_median_within": (float(np.mean(jumps) / np.median(inside)) if jumps and inside else None),
            "switch_gap": summary(gaps), "overlap_mismatch": summary(overlap),
            "period_ms": dict(summary(periods) or {}, target=target,
                              late=int((periods > 1.5 * target).sum()) if target else None),
            "rows_at_switch": [steps[t]["row"] for t in switches]}


def start_server(args):
    cmd = [args.pi0, "serve", "--checkpoint", args.checkpoint, "--port", str(args.port), "--layout", "aloha"]
    if not args.fresh_noise:
        cmd += ["--seed", str(args.seed)]
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
            obs["images"] = {c: physics.render(height=args.render_height, width=args.render_width, camera_id=c)
                             for c in cams}
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
            images[key] = chw(last[cam] if cam in last else
                              physics.render(height=args.render_height, width=args.render_width, camera_id=cam))
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
    ap.add_argument("--action-horizon", type=int, default=10,
                    help="actions used from each chunk before asking again (the execution horizon in async/rtc)")
    ap.add_argument("--mode", choices=["sync", "async", "rtc"], default="sync",
                    help="sync: openpi's ActionChunkBroker; async: pi0_client.AsyncActionChunkBroker without "
                         "real-time chunking; rtc: with it")
    ap.add_argument("--hz", type=float, default=0, help="control rate the loop is paced at (0: unpaced)")
    ap.add_argument("--seed", type=int, default=0, help="env reset seed (cube position) and the server's noise seed")
    ap.add_argument("--fresh-noise", action="store_true",
                    help="start pi0 serve without --seed: each request draws new noise (seeds 1, 2, 3, …), as a "
                         "deployed server does; by default every request uses --seed's noise")
    ap.add_argument("--prompt", default="transfer the cube")
    ap.add_argument("--wrists", action="store_true", help="also send cam_left_wrist and cam_right_wrist")
    ap.add_argument("--stock-render", action="store_true", help="keep gym-aloha's three-camera rendering per step")
    ap.add_argument("--sheet-every", type=int, default=10)
    ap.add_argument("--out-dir", default=os.path.join(tempfile.gettempdir(), "pi0_closed_loop"),
                    help="where the contact sheet and latency figures go (default: TMPDIR/pi0_closed_loop)")
    ap.add_argument("--render-size", default="640x480",
                    help="WIDTHxHEIGHT the cameras are rendered at before resize-with-pad to 224×224 (gym-aloha: "
                         "640x480; smaller renders faster, for higher control rates)")
    args = ap.parse_args()
    m = re.fullmatch(r"(\d+)x(\d+)", args.render_size)
    if not m or min(int(m.group(1)), int(m.group(2))) < 16:
        ap.error(f"--render-size: expected WIDTHxHEIGHT such as 640x480, got {args.render_size!r}")
    args.render_width, args.render_height = int(m.group(1)), int(m.group(2))
    if args.stock_render and args.render_size != "640x480":
        ap.error("--render-size needs the script's own rendering (drop --stock-render)")
    os.makedirs(args.out_dir, exist_ok=True)

    server = None
    url = args.url
    if url is None:
        server, url = start_server(args)
    try:
        env = make_env(args)
        obs, _ = env.reset(seed=args.seed)
        client = websocket_client_policy.WebsocketClientPolicy(host=url)
        metadata = client.get_server_metadata()
        print("server metadata:", metadata, flush=True)
        timed = TimedPolicy(client)
        broker = make_broker(args, timed, metadata)
        tracker = ChunkTracker(args.mode, timed, broker)
        steps, frames, successes, max_reward = [], [], 0, 0.0
        period = 1.0 / args.hz if args.hz > 0 else 0.0
        timed.origin = next_tick = time.perf_counter()
        for t in range(args.steps):
            tick = time.perf_counter()
            request = openpi_observation(env, obs, args)
            if t % args.sheet_every == 0 or t == args.steps - 1:
                frames.append((t, np.ascontiguousarray(request["images"]["cam_high"].transpose(1, 2, 0))))
            n, stalls = len(timed.records), (0 if args.mode == "sync" else broker.stats.stalls)
            t0 = time.perf_counter()
            action = np.asarray(broker.infer(request)["actions"], dtype=np.float64)
            control_ms = 1000 * (time.perf_counter() - t0)
            # the step waited for an inference: every request in sync mode; the first chunk or a stall otherwise
            triggered = (len(timed.records) > n if args.mode == "sync" else t == 0 or broker.stats.stalls > stalls)
            previous = tracker.chunk
            chunk, row = tracker.after_infer(n)
            t1 = time.perf_counter()
            obs, reward, terminated, truncated, info = env.step(action)
            sim_ms = 1000 * (time.perf_counter() - t1)
            max_reward = max(max_reward, float(reward))
            successes += bool(info.get("is_success"))
            switch = t > 0 and chunk != previous
            steps.append({"step": t, "tick_s": tick - timed.origin, "control_ms": control_ms, "inference": triggered,
                          "chunk": chunk, "row": row, "switch": switch, "sim_ms": sim_ms,
                          "reward": float(reward), "action": [round(float(a), 5) for a in action]})
            if triggered or switch or t % 10 == 0:
                what = f"new chunk {chunk} row {row}" if switch else ("infer" if triggered else "chunk")
                print(f"step {t:4d}  {what:18s} "
                      f"{control_ms:8.1f} ms  sim {sim_ms:7.1f} ms  reward {reward}", flush=True)
            if terminated or truncated:
                break
            if period:
                next_tick += period
                now = time.perf_counter()
                if now < next_tick:
                    time.sleep(next_tick - now)
                else:
                    next_tick = now   # overran: keep the period from here on
        if args.mode != "sync":
            broker.reset()   # waits for a request still in flight
        contact_sheet(frames, os.path.join(args.out_dir, "contact_sheet.png"))
        report = {
            "env": "gym_aloha/AlohaTransferCube-v0", "seed": args.seed, "fresh_noise": args.fresh_noise,
            "steps": len(steps), "url": url,
            "checkpoint": None if args.url else os.path.abspath(args.checkpoint), "prompt": args.prompt,
            "action_horizon": args.action_horizon, "mode": args.mode, "hz": args.hz,
            "cameras": list(request["images"].keys()),
            "render": "stock (3 cameras/step)" if args.stock_render else f"only the cameras sent, {args.render_size}",
            "max_reward": max_reward, "success_steps": successes,
            "inference": {"round_trip": stats([r["round_trip_ms"] for r in timed.records]),
                          "server_infer": stats([r["server_infer_ms"] for r in timed.records if r["server_infer_ms"] is not None]),
                          "policy_infer": stats([r["policy_infer_ms"] for r in timed.records if r["policy_infer_ms"] is not None]),
                          "actions_shape": timed.records[0]["actions_shape"] if timed.records else None},
            "control_step": {"all": stats([s["control_ms"] for s in steps]),
                             "with_inference": stats([s["control_ms"] for s in steps if s["inference"]]),
                             "from_chunk": stats([s["control_ms"] for s in steps if not s["inference"]])},
            "sim_step": stats([s["sim_ms"] for s in steps]),
            "boundaries": boundary_report(steps, timed.results, args.hz),
            "broker": ({"delays": broker.stats.delays, "stalls": broker.stats.stalls,
                        "latencies_ms": [1000 * x for x in broker.stats.latencies_s]} if args.mode != "sync" else None),
            "inferences": timed.records,
        }
        with open(os.path.join(args.out_dir, "latency.json"), "w") as f:
            json.dump(report, f, indent=1)
        with open(os.path.join(args.out_dir, "steps.jsonl"), "w") as f:
            for s in steps:
                f.write(json.dumps(s) + "\n")
        with open(os.path.join(args.out_dir, "chunks.json"), "w") as f:
            json.dump([dict(r, actions=np.round(np.asarray(res["actions"], dtype=np.float64), 5).tolist())
                       for r, res in zip(timed.records, timed.results)], f)
        inf, ctl = report["inference"]["round_trip"], report["control_step"]["all"]
        print(f"{len(steps)} steps, {len(timed.records)} inferences; inference round trip p50 {inf['p50_ms']:.1f} / "
              f"p95 {inf['p95_ms']:.1f} / max {inf['max_ms']:.1f} ms; control step p50 {ctl['p50_ms']:.2f} / "
              f"p95 {ctl['p95_ms']:.1f} / max {ctl['max_ms']:.1f} ms; max reward {max_reward}")
        b = report["boundaries"]
        if b["jump"]:
            print(f"mode {args.mode}: {b['jump']['n']} chunk boundaries, jump |a_t - a_t-1| max {b['jump']['max']:.3f} / "
                  f"mean {b['jump']['mean']:.3f} (median step inside a chunk {b['within_chunk_change']['median']:.3f}); "
                  f"switch gap mean {(b['switch_gap'] or {'mean': float('nan')})['mean']:.3f}; "
                  f"period median {b['period_ms']['median']:.0f} / p99 {b['period_ms']['p99']:.0f} / "
                  f"max {b['period_ms']['max']:.0f} ms" + (f"; delays {report['broker']['delays']}" if report["broker"] else ""))
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
