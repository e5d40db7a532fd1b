"""Two-link planar reacher matching a whole-arm goal pose.

A two-link arm (links ``LINK`` long) turns about a shoulder at the origin (unlimited) and an
elbow (limited to +-``ELBOW_LIMIT``), driven by two torque motors; joints are damped.
Control at 20 Hz (dt 0.01, 5 sub-steps per action). Gravity acts along the hinge axes.

| Action | range   | meaning                            |
|--------|---------|------------------------------------|
| 0      | [-1, 1] | shoulder torque (x ``TORQUE`` N m) |
| 1      | [-1, 1] | elbow torque (x ``TORQUE`` N m)    |

| Observation | shape     | meaning                                                     |
|-------------|-----------|-------------------------------------------------------------|
| pixels      | (H, W, 3) | top-down RGB, uint8 (64x64 by default)                      |
| state       | (4,)      | shoulder angle (wrapped to [-pi, pi)), elbow angle, their velocities |

Goal: ``(shoulder, elbow)`` with shoulder in [-pi, pi] and elbow in +-``ELBOW_LIMIT``.
Success (the criterion of published reacher numbers): *each* joint within ``SUCCESS_TOL``
(0.05 rad) of the goal pose, angles wrapped. Distance: the largest wrapped joint error (rad).
The target marker is a translucent ghost arm in the goal pose.
"""

from __future__ import annotations

import mujoco
import numpy as np

from envs import _mjcf
from envs.base import GoalTask, wrap_angle

LINK = 0.45
ELBOW_LIMIT = 2.6
SUCCESS_TOL = 0.05
TORQUE = 1.0
DAMPING = 0.6


def pose_errors(qpos: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Wrapped absolute errors (2,) in radians of a two-link arm's joints (qpos[:2]) against a goal
    pose: the whole-arm pose test of published reacher numbers is each below ``SUCCESS_TOL``."""
    return np.abs(wrap_angle(np.asarray(qpos)[:2] - goal))


class ReacherEnv(GoalTask):
    goal_names = ("shoulder", "elbow")
    state_names = ("shoulder", "elbow", "shoulder_vel", "elbow_vel")
    angle_dims = (0, 1)

    def _mjcf(self) -> str:
        L = LINK
        return (
            _mjcf.header("reacher")
            + "  <worldbody>\n"
            + _mjcf.floor_and_walls(1.0)
            + _mjcf.cameras(0, 0, 1.05)
            + f"""    <geom name="base" type="cylinder" size=".07 .02" pos="0 0 .02" rgba=".2 .2 .25 1"
          contype="0" conaffinity="0"/>
    <body name="upper" pos="0 0 .08">
      <joint name="shoulder" type="hinge" axis="0 0 1" damping="{DAMPING}"/>
      <geom name="upper" type="capsule" fromto="0 0 0 {L} 0 0" size=".06" mass="1"
            rgba=".15 .45 .85 1" contype="0" conaffinity="0"/>
      <body name="lower" pos="{L} 0 0">
        <joint name="elbow" type="hinge" axis="0 0 1" range="{-ELBOW_LIMIT} {ELBOW_LIMIT}" damping="{DAMPING}"/>
        <geom name="lower" type="capsule" fromto="0 0 0 {L} 0 0" size=".05" mass=".5"
              rgba=".9 .55 .1 1" contype="0" conaffinity="0"/>
        <geom name="tip" type="sphere" pos="{L} 0 0" size=".07" mass=".05" rgba=".85 .15 .15 1"
              contype="0" conaffinity="0"/>
      </body>
    </body>
    <body name="ghost_upper" mocap="true" pos="0 0 .09">
      <geom type="capsule" fromto="0 0 0 {L} 0 0" size=".06" rgba=".1 .8 .2 .35"
            contype="0" conaffinity="0" group="3"/>
    </body>
    <body name="ghost_lower" mocap="true" pos="{L} 0 .09">
      <geom type="capsule" fromto="0 0 0 {L} 0 0" size=".05" rgba=".1 .8 .2 .35"
            contype="0" conaffinity="0" group="3"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="shoulder" gear="{TORQUE}" ctrlrange="-1 1"/>
    <motor joint="elbow" gear="{TORQUE}" ctrlrange="-1 1"/>
  </actuator>
</mujoco>
"""
        )

    def _proprio(self, data: mujoco.MjData) -> np.ndarray:
        return np.array([wrap_angle(data.qpos[0]), data.qpos[1], data.qvel[0], data.qvel[1]])

    def _randomize_initial_state(self) -> None:
        self.data.qpos[:2] = self.sample_goal()

    def sample_goal(self, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = self.np_random if rng is None else rng
        return np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-ELBOW_LIMIT, ELBOW_LIMIT)])

    def goal_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([-np.pi, -ELBOW_LIMIT]), np.array([np.pi, ELBOW_LIMIT])

    def goal_from_state(self, state: np.ndarray) -> np.ndarray:
        q = self.qpos_of(state)
        return np.array([wrap_angle(q[0]), q[1]])

    def _pose_goal(self, data: mujoco.MjData, goal: np.ndarray) -> None:
        data.qpos[:2] = goal
        data.qvel[:] = 0.0

    def _place_marker(self, goal: np.ndarray) -> None:
        q1, q2 = goal
        self.data.mocap_quat[0] = _mjcf.yaw_quat(q1)
        self.data.mocap_pos[1, :2] = LINK * np.cos(q1), LINK * np.sin(q1)
        self.data.mocap_quat[1] = _mjcf.yaw_quat(q1 + q2)

    coverage_names = ("shoulder", "elbow")

    def coverage_coords(self, states: np.ndarray) -> np.ndarray:
        q = np.asarray(states)[:, 1:3]
        return np.stack([wrap_angle(q[:, 0]), q[:, 1]], axis=1)

    def joint_errors(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Wrapped absolute joint errors (2,) in radians."""
        return pose_errors(self.qpos_of(state), goal)

    def _distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        return float(self.joint_errors(state, goal).max())

    def _success(self, state: np.ndarray, goal: np.ndarray) -> bool:
        return bool(np.all(self.joint_errors(state, goal) < SUCCESS_TOL))
