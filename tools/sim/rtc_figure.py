#!/usr/bin/env python3
"""Chunk boundaries of several closed-loop runs side by side: the picture and the table of
docs/SIMULATION_DEMO.md §4.

    /work/venvs/aloha/bin/python tools/sim/rtc_figure.py sync=/tmp/rtc_sync async=/tmp/rtc_async \
        rtc=/tmp/rtc_rtc --out docs/rtc_closed_loop.png [--dims 1,8] [--first-boundary 1] [--dpi 80]

Each NAME=DIR is the --out-dir of one `tools/sim/closed_loop.py --mode …` run (latency.json, steps.jsonl,
chunks.json). One column per run: for a few action dimensions, the executed action over three chunk
boundaries (red lines), what the old chunk would have commanded had it gone on (dashed), the new chunk's
rows for the steps that passed while it was computed (dotted; asynchronous modes), and below the loop's
period per step against the target. Prints the figures as a Markdown table.
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

JOINTS = ["waist", "shoulder", "elbow", "forearm roll", "wrist angle", "wrist rotate", "gripper"]
NAMES = [f"{side} {j}" for side in ("left", "right") for j in JOINTS]
TITLES = {"sync": "sync: openpi ActionChunkBroker (the arm waits)",
          "async": "async, no RTC: AsyncActionChunkBroker(rtc=False)",
          "rtc": "async + RTC: AsyncActionChunkBroker(rtc=True)"}


def load(path):
    with open(os.path.join(path, "latency.json")) as f:
        report = json.load(f)
    with open(os.path.join(path, "steps.jsonl")) as f:
        steps = [json.loads(line) for line in f]
    with open(os.path.join(path, "chunks.json")) as f:
        chunks = json.load(f)
    return report, steps, chunks


def draw_column(axes, name, report, steps, chunks, dims, first):
    actions = np.array([s["action"] for s in steps])
    ticks = np.array([s["tick_s"] for s in steps])
    switches = report["boundaries"]["switch_steps"]
    shown = switches[first:first + 3]
    if len(shown) < 3:
        raise SystemExit(f"{name}: {len(switches)} chunk boundaries, need {first + 3} (run more --steps)")
    lo, hi = max(1, shown[0] - max(8, steps[shown[0]]["row"] + 2)), min(len(steps) - 1, shown[-1] + 8)
    x = np.arange(lo, hi + 1)
    for ax, d in zip(axes[:-1], dims):
        ax.plot(x, actions[lo:hi + 1, d], "-o", color="black", ms=2.5, lw=1.2, label="executed action")
        for t in shown:
            prev = steps[t - 1]
            old = np.asarray(chunks[prev["chunk"]]["actions"])
            rows = np.arange(prev["row"] + 1, min(len(old), prev["row"] + 7))
            ax.plot(t + rows - rows[0], old[rows, d], "--", color="tab:orange", lw=1.2,
                    label="old chunk, had it gone on")
            row = steps[t]["row"]
            if row > 0:
                new = np.asarray(chunks[steps[t]["chunk"]]["actions"])
                ax.plot(np.arange(t - row, t + 1), new[:row + 1, d], ":", color="tab:blue", lw=1.6,
                        label="new chunk over the delay")
                ax.axvspan(t - row - 0.5, t - 0.5, color="tab:blue", alpha=0.07, lw=0)
            ax.axvline(t - 0.5, color="tab:red", lw=1, alpha=0.8)
        ax.set_xlim(lo - 0.5, hi + 0.5)
        ax.set_ylabel(NAMES[d] if d < len(NAMES) else f"action {d}", fontsize=8)
        ax.tick_params(labelsize=7)
    ax = axes[-1]
    period = 1000 * np.diff(ticks)            # period[i]: from step i to step i+1
    ax.step(np.arange(lo, hi), period[lo:hi], where="post", color="black", lw=1.2)
    target = report["boundaries"]["period_ms"]["target"]
    if target:
        ax.axhline(target, color="tab:green", lw=1, ls="--")
    for t in shown:
        ax.axvline(t - 0.5, color="tab:red", lw=1, alpha=0.8)
    ax.set_xlim(lo - 0.5, hi + 0.5)
    ax.set_ylabel("loop period (ms)", fontsize=8)
    ax.set_xlabel("control step", fontsize=8)
    ax.tick_params(labelsize=7)
    b = report["boundaries"]
    axes[0].set_title(f"{TITLES.get(name, name)}\nswitch gap: mean {b['switch_gap']['mean']:.2f}, "
                      f"max {b['switch_gap']['max']:.2f}", fontsize=9)


def table(runs):
    def f(v, fmt="{:.3f}"):
        return "–" if v is None else fmt.format(v)

    lines = ["| | " + " | ".join(name for name, *_ in runs) + " |", "|---" * (len(runs) + 1) + "|"]
    rows = [
        ("chunk boundaries", lambda r: str(r["boundaries"]["jump"]["n"])),
        ("jump \\|a_t − a_t−1\\| at a boundary, mean / max", lambda r: f"{f(r['boundaries']['jump']['mean'])} / {f(r['boundaries']['jump']['max'])}"),
        ("\\|a_t − a_t−1\\| inside a chunk, median / max", lambda r: f"{f(r['boundaries']['within_chunk_change']['median'])} / {f(r['boundaries']['within_chunk_change']['max'])}"),
        ("switch gap (new vs old chunk at the switch), mean / max", lambda r: f"{f(r['boundaries']['switch_gap']['mean'])} / {f(r['boundaries']['switch_gap']['max'])}"),
        ("new chunk vs executed over the delay, mean", lambda r: f((r["boundaries"]["overlap_mismatch"] or {}).get("mean"))),
        ("loop period median / p99 / max (ms)", lambda r: "{:.0f} / {:.0f} / {:.0f}".format(*(r["boundaries"]["period_ms"][k] for k in ("median", "p99", "max")))),
        ("periods > 1.5 × target", lambda r: str(r["boundaries"]["period_ms"]["late"])),
        ("inference round trip p50 / max (ms)", lambda r: "{:.0f} / {:.0f}".format(r["inference"]["round_trip"]["p50_ms"], r["inference"]["round_trip"]["max_ms"])),
        ("delay (control steps) per chunk", lambda r: ", ".join(map(str, r["broker"]["delays"])) if r.get("broker") else "0 (the arm waits)"),
        ("stalls", lambda r: str(r["broker"]["stalls"]) if r.get("broker") else "–"),
    ]
    for label, fn in rows:
        lines.append(f"| {label} | " + " | ".join(fn(rep) for _, rep, _, _ in runs) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="NAME=DIR, DIR a closed_loop.py --out-dir")
    ap.add_argument("--out", required=True, help="the PNG to write")
    ap.add_argument("--dims", default="1,8", help="action dimensions to draw (ALOHA: 0–6 left arm, 7–13 right)")
    ap.add_argument("--first-boundary", type=int, default=1, help="index of the first of the three boundaries drawn")
    ap.add_argument("--dpi", type=int, default=80)
    args = ap.parse_args()
    runs = []
    for spec in args.runs:
        name, _, path = spec.partition("=")
        runs.append((name, *load(path)))
    dims = [int(d) for d in args.dims.split(",")]
    fig, grid = plt.subplots(len(dims) + 1, len(runs), figsize=(4.6 * len(runs), 1.9 * (len(dims) + 1) + 1.2),
                             squeeze=False, gridspec_kw={"height_ratios": [2] * len(dims) + [1.3]})
    for col, (name, report, steps, chunks) in enumerate(runs):
        draw_column(grid[:, col], name, report, steps, chunks, dims, args.first_boundary)
    top = max(ax.get_ylim()[1] for ax in grid[-1, :])   # one period scale for all runs
    for ax in grid[-1, :]:
        ax.set_ylim(0, top)
    handles, labels = grid[0, -1].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    unique["chunk boundary"] = plt.Line2D([], [], color="tab:red", lw=1)
    unique["target period"] = plt.Line2D([], [], color="tab:green", lw=1, ls="--")
    fig.legend(unique.values(), unique.keys(), loc="lower center", ncol=len(unique), fontsize=8, frameon=False)
    r0 = runs[0][1]
    fig.suptitle(f"π0 closed loop, gym-aloha AlohaTransferCube, bundled DemoCheckpoint (RANDOM weights): "
                 f"{r0['hz']:g} Hz, a new chunk every {r0['action_horizon']} steps\nswitch gap: |new chunk − old chunk| "
                 f"at the step where the new one takes over, max over the 14 dims, over the whole run", fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(args.out, dpi=args.dpi)
    print(f"wrote {args.out} ({os.path.getsize(args.out) // 1024} KB)")
    print(table(runs))


if __name__ == "__main__":
    main()
