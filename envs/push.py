"""Pushing: a round pusher moves a block (a T or a square) to a goal position and orientation.

A MuJoCo analogue of Push-T. The pusher (a ball of radius ``PUSHER_RADIUS``) is driven by two
velocity actuators; the block moves in the plane (x/y slide + yaw hinge) with damped joints, so
it stops soon after contact ends (quasi-static pushing). Walls enclose [-1, 1]^2. Control at
20 Hz (dt 0.01, 5 sub-steps per action).

| Action | range   | meaning                                        |
|--------|---------|------------------------------------------------|
| 0      | [-1, 1] | pusher target velocity along x (x ``SPEED``)    |
| 1      | [-1, 1] | pusher target velocity along y (x ``SPEED``)    |

| Observation | shape     | meaning                                        |
|-------------|-----------|------------------------------------------------|
| pixels      | (H, W, 3) | top-down RGB, uint8 (64x64 by default)         |
| state       | (4,)      | pusher x, y, vx, vy (the proprio of the robot)  |

The block's pose is not proprio: it is in the physics state (``get_state()``) and the pixels.

Goal: ``(block_x, block_y, block_angle, pusher_x, pusher_y)``; block position in
[-``BLOCK_LIMIT``, ``BLOCK_LIMIT``]^2, pusher in the arena and not overlapping the block. The
pusher entries only pose the goal image. Success: the block within ``POS_TOL`` (0.08, 4% of the
arena width) of the goal position *and* within ``ANGLE_TOL`` (pi/9 = 20 degrees) of the goal
angle (modulo the block's symmetry: 2 pi for the T, pi/2 for the square). These match Push-T's
usual state test (position within about 4% of the workspace, angle within 20 degrees).
Distance: ``|dp| + ROT_RADIUS * |d angle|`` (ROT_RADIUS 0.15 converts radians to length).
"""

from __future__ import annotations

import mujoco
import numpy as np

from envs import _mjcf
from envs.base import GoalTask, wrap_angle

HALF = 1.0
PUSHER_RADIUS = 0.08
SPEED = 1.5
BLOCK_LIMIT = 0.6
POS_TOL = 0.08
ANGLE_TOL = np.pi / 9
ROT_RADIUS = 0.15
#: block shapes as boxes (center x, center y, half x, half y) in the block frame
BLOCKS = {
    "t": ((0.0, 0.12, 0.24, 0.06), (0.0, -0.12, 0.06, 0.18)),
    "box": ((0.0, 0.0, 0.15, 0.15),),
}
SYMMETRY = {"t": 2 * np.pi, "box": np.pi / 2}


class PushEnv(GoalTask):
    goal_names = ("block_x", "block_y", "block_angle", "pusher_x", "pusher_y")
    state_names = ("pusher_x", "pusher_y", "pusher_vx", "pusher_vy")

    def __init__(self, block: str = "t", **kwargs):
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {sorted(BLOCKS)}, got {block!r}")
        self.block = block
        self.boxes = np.array(BLOCKS[block])
        self.period = SYMMETRY[block]
        super().__init__(**kwargs)

    def _mjcf(self) -> str:
        def boxes(rgba: str, extra: str) -> str:
            return "".join(
                f'      <geom type="box" pos="{cx} {cy} 0" size="{hx} {hy} .05" rgba="{rgba}" {extra}/>\n'
                for cx, cy, hx, hy in self.boxes
            )

        return (
            _mjcf.header("push")
            + "  <worldbody>\n"
            + _mjcf.floor_and_walls(HALF)
            + _mjcf.cameras(0, 0, HALF + 0.1)
            + f"""    <body name="pusher" pos="0 0 .06">
      <joint name="pusher_x" type="slide" axis="1 0 0" damping=".5"/>
      <joint name="pusher_y" type="slide" axis="0 1 0" damping=".5"/>
      <geom name="pusher" type="sphere" size="{PUSHER_RADIUS}" mass="1" rgba=".95 .35 .1 1" friction=".4"/>
    </body>
    <body name="block" pos="0 0 .06">
      <joint name="block_x" type="slide" axis="1 0 0" damping="8"/>
      <joint name="block_y" type="slide" axis="0 1 0" damping="8"/>
      <joint name="block_yaw" type="hinge" axis="0 0 1" damping=".4"/>
"""
            + boxes(".2 .3 .75 1", 'mass=".3" friction=".4"')
            + """    </body>
    <body name="target" mocap="true" pos="0 0 .005">
"""
            + boxes(".1 .8 .2 .35", 'contype="0" conaffinity="0" group="3"')
            + f"""    </body>
  </worldbody>
  <actuator>
    <velocity joint="pusher_x" kv="25" ctrlrange="{-SPEED} {SPEED}" forcerange="-40 40"/>
    <velocity joint="pusher_y" kv="25" ctrlrange="{-SPEED} {SPEED}" forcerange="-40 40"/>
  </actuator>
</mujoco>
"""
        )

    # qpos layout: pusher_x, pusher_y, block_x, block_y, block_yaw

    def _proprio(self, data: mujoco.MjData) -> np.ndarray:
        return np.concatenate([data.qpos[:2], data.qvel[:2]])

    def pusher_overlaps_block(
        self, pusher_xy: np.ndarray, block_pose: np.ndarray, margin: float = 0.02
    ) -> bool:
        """Whether a pusher at ``pusher_xy`` intersects the block at ``(x, y, angle)``."""
        return bool(self.block_sdf(np.asarray(pusher_xy)[None], block_pose)[0] < PUSHER_RADIUS + margin)

    def block_sdf(self, points: np.ndarray, block_pose: np.ndarray) -> np.ndarray:
        """Signed distance (P,) of world points (P, 2) to the block at ``(x, y, angle)``:
        negative inside, zero on its outline."""
        x, y, a = block_pose
        c, s = np.cos(a), np.sin(a)
        dx, dy = points[:, 0] - x, points[:, 1] - y
        local = np.stack([c * dx + s * dy, -s * dx + c * dy], axis=-1)  # (P, 2) in the block frame
        d = np.abs(local[:, None] - self.boxes[:, :2]) - self.boxes[:, 2:]  # (P, boxes, 2)
        dist = np.linalg.norm(np.maximum(d, 0.0), axis=-1) + np.minimum(d.max(axis=-1), 0.0)
        return dist.min(axis=-1)

    def _sample_config(self, rng: np.random.Generator) -> np.ndarray:
        block = np.array([*rng.uniform(-BLOCK_LIMIT, BLOCK_LIMIT, 2), rng.uniform(-np.pi, np.pi)])
        lim = HALF - PUSHER_RADIUS
        while True:
            pusher = rng.uniform(-lim, lim, size=2)
            if not self.pusher_overlaps_block(pusher, block):
                return np.concatenate([block, pusher])

    def _randomize_initial_state(self) -> None:
        g = self._sample_config(self.np_random)
        self.data.qpos[:] = [g[3], g[4], g[0], g[1], g[2]]

    def sample_goal(self, rng: np.random.Generator | None = None) -> np.ndarray:
        return self._sample_config(self.np_random if rng is None else rng)

    def goal_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        p = HALF - PUSHER_RADIUS
        return (
            np.array([-BLOCK_LIMIT, -BLOCK_LIMIT, -np.pi, -p, -p]),
            np.array([BLOCK_LIMIT, BLOCK_LIMIT, np.pi, p, p]),
        )

    def _validate_goal(self, goal: np.ndarray) -> None:
        if self.pusher_overlaps_block(goal[3:], goal[:3], margin=0.0):
            raise ValueError(
                f"goal pusher position {goal[3:].tolist()} overlaps the goal block pose {goal[:3].tolist()}"
            )

    def goal_from_state(self, state: np.ndarray) -> np.ndarray:
        q = self.qpos_of(state)
        return np.array([q[2], q[3], wrap_angle(q[4]), q[0], q[1]])

    def _pose_goal(self, data: mujoco.MjData, goal: np.ndarray) -> None:
        data.qpos[:] = [goal[3], goal[4], goal[0], goal[1], goal[2]]
        data.qvel[:] = 0.0

    def _place_marker(self, goal: np.ndarray) -> None:
        self.data.mocap_pos[0, :2] = goal[:2]
        self.data.mocap_quat[0] = _mjcf.yaw_quat(goal[2])

    coverage_names = ("block_x", "block_y")

    def coverage_coords(self, states: np.ndarray) -> np.ndarray:
        return np.asarray(states)[:, 3:5]  # qpos[2:4]: the block position

    def coverage_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.full(2, -HALF), np.full(2, HALF)

    def block_errors(self, state: np.ndarray, goal: np.ndarray) -> tuple[float, float]:
        """(position error, angle error modulo the block's symmetry) of the block."""
        q = self.qpos_of(state)
        dpos = float(np.hypot(q[2] - goal[0], q[3] - goal[1]))
        dang = (q[4] - goal[2] + self.period / 2) % self.period - self.period / 2
        return dpos, float(abs(dang))

    def _distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        dpos, dang = self.block_errors(state, goal)
        return dpos + ROT_RADIUS * dang

    def _success(self, state: np.ndarray, goal: np.ndarray) -> bool:
        dpos, dang = self.block_errors(state, goal)
        return dpos < POS_TOL and dang < ANGLE_TOL


class PushWithBlockStateEnv(PushEnv):
    """Pushing whose ``state`` adds the block's pose: what success is judged on.

    | Observation | shape | meaning                                                       |
    |-------------|-------|---------------------------------------------------------------|
    | state       | (7,)  | pusher x, y, vx, vy, then block x, y, angle (wrapped to [-pi, pi)) |

    The block's pose is not proprio but simulator state, like Push-T's ``environment_state`` in
    LeRobot: a world model trained on it predicts the block's pose and plans on it, which a
    camera-only robot would have to estimate. Everything else, the pixels included, is
    ``PushEnv``'s, so the same seed gives the same episodes as ``wm/PushT-v0``.
    """

    state_names = (*PushEnv.state_names, "block_x", "block_y", "block_angle")
    angle_dims = (6,)

    def _proprio(self, data: mujoco.MjData) -> np.ndarray:
        return np.concatenate([super()._proprio(data), data.qpos[2:4], [wrap_angle(data.qpos[4])]])
