"""GIF helpers that need no display: the tracking camera, and the publish step."""

import gymnasium as gym
import mujoco
import pytest

from paperlab.ppo.publish import publish
from paperlab.ppo.render import has_free_root, tracking_camera


def test_walkers_get_a_camera_that_tracks_the_torso_and_the_pendulum_does_not():
    ant = gym.make("Ant-v5").unwrapped
    pendulum = gym.make("InvertedPendulum-v5").unwrapped
    assert has_free_root(ant.model) and not has_free_root(pendulum.model)
    cam = tracking_camera(ant.model)
    assert cam.type == mujoco.mjtCamera.mjCAMERA_TRACKING and cam.trackbodyid == 1
    assert mujoco.mj_id2name(ant.model, mujoco.mjtObj.mjOBJ_BODY, cam.trackbodyid) == "torso"


def test_publish_copies_a_finished_run_and_never_overwrites_silently(tmp_path):
    run, dest = tmp_path / "run", tmp_path / "results" / "x"
    run.mkdir()
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        publish(run, dest)
    for f in ("config.yaml", "metrics.jsonl", "summary.json", "model.pt"):
        (run / f).write_text("{}")
    assert publish(run, dest) == ["config.yaml", "metrics.jsonl", "summary.json", "model.pt"]
    with pytest.raises(ValueError, match="--force"):
        publish(run, dest)
    assert publish(run, dest, force=True)
