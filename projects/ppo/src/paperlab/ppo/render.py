"""Render one episode of a trained policy (deterministic) to a GIF.

    make gif-ppo RUN=runs/ppo/InvertedPendulum-v5/ppo-seed1      # the documented command
    python -m paperlab.ppo.render runs/ppo/InvertedPendulum-v5/ppo-seed1/model.pt --out ip.gif

MuJoCo (gymnasium) envs and Brax envs are drawn with MuJoCo's renderer at 320x240. A robot with a
floating base (Ant, Humanoid: its first joint is a free joint) is followed by a tracking camera
locked on its torso, so that it never walks out of the picture; fixed-base models (the pendulum)
keep the environment's own camera. One frame is kept every ``--every`` env steps and the GIF plays
at ``--fps``; the command prints how that compares with real time. Off-screen rendering needs
``MUJOCO_GL=egl`` (set here unless already set).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from paperlab.ppo.checkpoint import load_policy
from paperlab.shared.cli import run_command
from paperlab.shared.gif import save_gif

WIDTH, HEIGHT = 320, 240


def _policy(agent, rms, clip):
    @torch.inference_mode()
    def act(obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float32)[None]
        if rms is not None:
            x = rms.normalize(x, clip)
        return agent.actor.mean(torch.from_numpy(x))[0].numpy()

    return act


def has_free_root(model) -> bool:
    """True for a floating-base robot (its first joint is a free joint)."""
    import mujoco

    return model.njnt > 0 and model.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE


def tracking_camera(model, distance: float = 4.0):
    """A camera that follows body 1 (the torso of a floating-base robot) from the side and above,
    ``distance`` metres away (the scene's extent is that of the whole floor, far too wide)."""
    import mujoco

    cam = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, cam)
    cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    cam.trackbodyid = 1
    cam.distance = distance
    cam.elevation, cam.azimuth = -20.0, 90.0
    return cam


class MjFrames:
    """Frames of (model, data) pairs through ``mujoco.Renderer`` with an optional tracking camera."""

    def __init__(self, model, track: bool):
        import mujoco

        self.renderer = mujoco.Renderer(model, height=HEIGHT, width=WIDTH)
        self.camera = tracking_camera(model) if track else -1

    def __call__(self, data) -> np.ndarray:
        self.renderer.update_scene(data, camera=self.camera)
        return self.renderer.render().copy()

    def close(self) -> None:
        self.renderer.close()


def gym_frames(cfg, act, max_steps: int, seed: int, every: int, track: str) -> tuple[list[np.ndarray], float, float]:
    import gymnasium as gym

    try:
        env = gym.make(cfg.env_id, render_mode="rgb_array", width=WIDTH, height=HEIGHT)
    except TypeError:  # not a MuJoCo env: no width/height
        env = gym.make(cfg.env_id, render_mode="rgb_array")
    u = env.unwrapped
    own = None
    if hasattr(u, "model") and hasattr(u, "data") and (track == "on" or (track == "auto" and has_free_root(u.model))):
        own = MjFrames(u.model, track=True)
    draw = (lambda: own(u.data)) if own is not None else env.render
    obs, _ = env.reset(seed=seed)
    frames, total = [draw()], 0.0
    for t in range(max_steps):
        a = np.clip(act(obs), env.action_space.low, env.action_space.high)
        obs, r, term, trunc, _ = env.step(a)
        total += float(r)
        if (t + 1) % every == 0:
            frames.append(draw())
        if term or trunc:
            break
    dt = float(getattr(u, "dt", 0.0))
    env.close()
    if own is not None:
        own.close()
    return frames, total, dt


def brax_frames(cfg, act, max_steps: int, seed: int, every: int, track: str) -> tuple[list[np.ndarray], float, float]:
    import jax
    import mujoco
    from brax import envs

    env = envs.get_environment(cfg.env_id[len("brax/") :], backend=cfg.brax_backend)
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    state = reset(jax.random.PRNGKey(seed))
    model = env.sys.mj_model
    draw = MjFrames(model, track=track == "on" or (track == "auto" and has_free_root(model)))
    data = mujoco.MjData(model)

    def frame(ps) -> np.ndarray:
        data.qpos, data.qvel = np.asarray(ps.q), np.asarray(ps.qd)
        mujoco.mj_forward(model, data)
        return draw(data)

    frames, total = [frame(state.pipeline_state)], 0.0
    for t in range(max_steps):
        a = np.clip(act(np.asarray(state.obs)), -1.0, 1.0)
        state = step(state, jax.numpy.asarray(a))
        total += float(state.reward)
        if (t + 1) % every == 0:
            frames.append(frame(state.pipeline_state))
        if float(state.done) > 0:
            break
    draw.close()
    return frames, total, float(env.dt)


def render(
    model: str | Path,
    out: str | Path,
    max_steps: int = 1000,
    every: int = 4,
    fps: float = 25,
    seed: int = 0,
    track: str = "auto",
) -> dict:
    if every < 1 or max_steps < 1 or fps <= 0:
        raise ValueError(f"--every and --max-steps must be >= 1 and --fps > 0 (got {every}, {max_steps}, {fps})")
    os.environ.setdefault("MUJOCO_GL", "egl")
    cfg, agent, rms = load_policy(model)
    act = _policy(agent, rms, cfg.obs_clip)
    fn = brax_frames if cfg.is_brax else gym_frames
    frames, total, dt = fn(cfg, act, max_steps, seed, every, track)
    save_gif(frames, out, fps=fps)
    speed = dt * every * fps  # simulated seconds per second of GIF
    return {"frames": len(frames), "return": total, "speed": speed}


def _main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model.pt of a run (or its checkpoints/last.pt)")
    p.add_argument("--out", required=True)
    p.add_argument("--max-steps", type=int, default=1000)
    p.add_argument("--every", type=int, default=4, help="keep one frame in this many env steps")
    p.add_argument("--fps", type=float, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--track",
        choices=("auto", "on", "off"),
        default="auto",
        help="tracking camera on the torso (auto: for floating-base robots)",
    )
    args = p.parse_args(argv)
    r = render(args.model, args.out, args.max_steps, args.every, args.fps, args.seed, args.track)
    speed = f", {r['speed']:.2g}x real time" if r["speed"] > 0 else ""
    print(f"wrote {args.out}: {r['frames']} frames at {args.fps:g} fps{speed}, episode return {r['return']:.1f}")


def main(argv=None):
    return run_command(_main, argv)


if __name__ == "__main__":
    main()
