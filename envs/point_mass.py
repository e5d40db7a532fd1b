"""Point mass reaching a goal position in an open arena (the easiest task).

A ball moves on a plane inside walls enclosing [-1, 1]^2, pushed by two force actuators.
Control at 20 Hz (dt 0.01, 5 sub-steps per action).

| Action | range   | meaning                         |
|--------|---------|---------------------------------|
| 0      | [-1, 1] | force along x (x ``FORCE`` N)   |
| 1      | [-1, 1] | force along y (x ``FORCE`` N)   |

| Observation | shape       | meaning                                   |
|-------------|-------------|-------------------------------------------|
| pixels      | (H, W, 3)   | top-down RGB, uint8 (64x64 by default)    |
| state       | (4,)        | x, y, vx, vy of the ball (float32)        |

Goal: ``(x, y)`` in [-0.9, 0.9]^2. Success: the ball within ``SUCCESS_RADIUS`` (0.1) of the
goal position. Reward: minus the distance to the goal (for information only).
"""

from __future__ import annotations

import numpy as np

from envs import _mjcf
from envs._ball import BallTask

HALF = 1.0
BALL_RADIUS = 0.1
GOAL_LIMIT = HALF - BALL_RADIUS
SUCCESS_RADIUS = 0.1
FORCE = 5.0
DAMPING = 2.5


class PointMassEnv(BallTask):
    success_radius = SUCCESS_RADIUS

    def _mjcf(self) -> str:
        r = BALL_RADIUS
        return (
            _mjcf.header("point_mass")
            + "  <worldbody>\n"
            + _mjcf.floor_and_walls(HALF)
            + _mjcf.cameras(0, 0, HALF + 0.1)
            + f"""    <body name="ball" pos="0 0 {r}">
      <joint name="x" type="slide" axis="1 0 0" damping="{DAMPING}"/>
      <joint name="y" type="slide" axis="0 1 0" damping="{DAMPING}"/>
      <geom name="ball" type="sphere" size="{r}" mass="1" rgba=".95 .35 .1 1"/>
    </body>
    <body name="target" mocap="true" pos="0 0 {r}">
      <geom type="sphere" size="{r}" rgba=".1 .8 .2 .5" contype="0" conaffinity="0" group="3"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="x" gear="{FORCE}" ctrlrange="-1 1"/>
    <motor joint="y" gear="{FORCE}" ctrlrange="-1 1"/>
  </actuator>
</mujoco>
"""
        )

    def sample_goal(self, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = self.np_random if rng is None else rng
        return rng.uniform(-GOAL_LIMIT, GOAL_LIMIT, size=2)

    def goal_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.full(2, -GOAL_LIMIT), np.full(2, GOAL_LIMIT)
