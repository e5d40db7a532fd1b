"""dm_control suite tasks (``pip install '.[benchmarks]'``): reacher easy/hard and point_mass easy.

The suite's own physics, reset draw and control step (``task.before_step``, ``n_sub_steps``
physics steps, ``task.after_step``) behind the planning-task API of :mod:`envs.adapters.base`.
What differs from ``dm_control.suite.load``:

* the observation is pixels from camera ``fixed`` (top-down) and a proprio of joint positions and
  velocities: the suite's ``to_target`` is the goal and stays out;
* the target sphere is in geom group 3, so observations and goal images do not show it;
* a goal is the target's (x, y); a dataset goal's is the finger's (reacher) or the mass's (point
  mass) position in the goal frame, and the target is moved there, so the suite's own test
  scores it;
* success is the suite's reward tolerance read as a test: the finger within target size +
  finger size (0.06 easy, 0.025 hard) of the target; the mass within the target's size. The
  ``pose`` variant scores the reacher as LeWM and DINO-WM report it: each joint within 0.05 rad of
  the goal pose.

| id                        | suite task        | action (A)        | state (P)                         |
|---------------------------|-------------------|-------------------|-----------------------------------|
| wm/dmc-reacher-easy-v0    | reacher easy      | 2 joint torques   | shoulder, wrist, their velocities |
| wm/dmc-reacher-hard-v0    | reacher hard      | as above          | as above                          |
| wm/dmc-reacher-pose-v0    | reacher, pose test| as above          | as above                          |
| wm/dmc-point-mass-easy-v0 | point_mass easy   | 2 forces          | x, y, their velocities            |
"""

from __future__ import annotations

from typing import ClassVar

import mujoco
import numpy as np

from envs.adapters.base import MujocoBenchmark, benchmark_module
from envs.base import MARKER_GROUP, wrap_angle
from envs.reacher import SUCCESS_TOL, pose_errors


class DMCTask(MujocoBenchmark):
    """One dm_control suite task; subclasses name the domain and the effector geom."""

    domain: ClassVar[str] = ""
    effector: ClassVar[str] = ""  # the geom whose position a goal is
    goal_names = ("target_x", "target_y")
    default_camera = "fixed"
    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, level: str = "easy", **kwargs):
        self.level = level
        super().__init__(**kwargs)

    def _build(self) -> None:
        suite = benchmark_module("dm_control.suite")
        self._suite = suite.load(self.domain, self.level, task_kwargs={"random": 0})
        self._physics = self._suite.physics
        self.model, self.data = self._physics.model.ptr, self._physics.data.ptr
        self._target = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, "target")
        self._effector = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, self.effector)
        self.model.geom_group[self._target] = MARKER_GROUP
        self._probe = mujoco.MjData(self.model)  # forward kinematics of recorded states

    def _action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        spec = self._suite.action_spec()
        return np.asarray(spec.minimum, np.float64), np.asarray(spec.maximum, np.float64)

    def _reset_benchmark(self, seed: int) -> np.ndarray:
        self._suite.task._random = np.random.RandomState(seed)
        self._suite.reset()
        return self.model.geom_pos[self._target, :2].copy()

    def _advance(self, action: np.ndarray) -> None:
        task, physics = self._suite.task, self._physics
        task.before_step(action, physics)
        for _ in range(self._suite._n_sub_steps):
            physics.step()
        task.after_step(physics)

    def _proprio(self) -> np.ndarray:
        return np.concatenate([self.data.qpos[:2], self.data.qvel[:2]])

    def _effector_xy(self, state: np.ndarray) -> np.ndarray:
        self._write_state(self._probe, state)
        return self._probe.geom_xpos[self._effector, :2].copy()

    def goal_from_state(self, state: np.ndarray) -> np.ndarray:
        return self._effector_xy(state)

    def _set_benchmark_goal(self, goal: np.ndarray) -> None:
        self.model.geom_pos[self._target, :2] = goal

    def _distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        return float(np.linalg.norm(self._effector_xy(state) - goal))

    def coverage_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([-0.3, -0.3]), np.array([0.3, 0.3])


class DMCReacher(DMCTask):
    """dm_control reacher: a two-link arm puts its finger on a target sphere."""

    domain, effector = "reacher", "finger"
    state_names = ("shoulder", "wrist", "shoulder_vel", "wrist_vel")
    angle_dims = (0, 1)
    source = "dm_control suite reacher"
    coverage_names = ("shoulder", "wrist")

    def _proprio(self) -> np.ndarray:
        q, v = self.data.qpos, self.data.qvel
        return np.array([wrap_angle(q[0]), q[1], v[0], v[1]])

    def _success(self, state: np.ndarray, goal: np.ndarray) -> bool:
        radii = self.model.geom_size[self._target, 0] + self.model.geom_size[self._effector, 0]
        return self._distance(state, goal) <= radii

    def _pose_goal(self, data: mujoco.MjData, goal: np.ndarray) -> None:
        """The arm with its finger on ``goal`` (two-link inverse kinematics, elbow as the wrist
        limit allows; the goal's side of the start's elbow sign)."""
        l1, l2 = self._links()
        r = np.clip(np.linalg.norm(goal), abs(l1 - l2) + 1e-9, l1 + l2 - 1e-9)
        elbow = np.arccos(np.clip((r**2 - l1**2 - l2**2) / (2 * l1 * l2), -1, 1))
        limit = self.model.jnt_range[1, 1]
        elbow = min(elbow, limit) * (1.0 if data.qpos[1] >= 0 else -1.0)
        shoulder = np.arctan2(goal[1], goal[0]) - np.arctan2(l2 * np.sin(elbow), l1 + l2 * np.cos(elbow))
        data.qpos[:2] = wrap_angle(shoulder), elbow
        data.qvel[:] = 0.0

    def _links(self) -> tuple[float, float]:
        hand = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, "hand")
        finger = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, "finger")
        return float(np.linalg.norm(self.model.body_pos[hand][:2])), float(
            np.linalg.norm(self.model.body_pos[finger][:2])
        )

    def coverage_coords(self, states: np.ndarray) -> np.ndarray:
        q = np.stack([self.qpos_of(s)[:2] for s in np.asarray(states)])
        return np.stack([wrap_angle(q[:, 0]), q[:, 1]], axis=1)

    def coverage_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lim = self.model.jnt_range[1, 1]
        return np.array([-np.pi, -lim]), np.array([np.pi, lim])


class DMCReacherPose(DMCReacher):
    """dm_control reacher scored as LeWM and DINO-WM score it: the whole arm's pose, each joint
    within ``SUCCESS_TOL`` rad of the goal's (a dataset goal's recorded pose; a drawn goal's target
    reached by inverse kinematics). Same physics, reset draw and frames as ``DMCReacher``."""

    goal_names = ("shoulder", "wrist")
    source = "dm_control suite reacher (whole-arm pose)"

    def _reset_benchmark(self, seed: int) -> np.ndarray:
        target = super()._reset_benchmark(seed)
        posed = mujoco.MjData(self.model)
        posed.qpos[:] = self.data.qpos
        DMCReacher._pose_goal(self, posed, target)  # the arm on the suite's target (inverse kinematics)
        return posed.qpos[:2].copy()

    def goal_from_state(self, state: np.ndarray) -> np.ndarray:
        q = self.qpos_of(state)
        return np.array([wrap_angle(q[0]), q[1]])

    def _set_benchmark_goal(self, goal: np.ndarray) -> None:
        posed = mujoco.MjData(self.model)
        posed.qpos[:2] = goal
        mujoco.mj_kinematics(self.model, posed)
        self.model.geom_pos[self._target, :2] = posed.geom_xpos[self._effector, :2]  # the marker, for people

    def _pose_goal(self, data: mujoco.MjData, goal: np.ndarray) -> None:
        data.qpos[:2] = goal
        data.qvel[:] = 0.0

    def _distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        return float(pose_errors(self.qpos_of(state), goal).max())

    def _success(self, state: np.ndarray, goal: np.ndarray) -> bool:
        return bool(np.all(pose_errors(self.qpos_of(state), goal) < SUCCESS_TOL))


class DMCPointMass(DMCTask):
    """dm_control point_mass: a mass on a plane reaches the target sphere."""

    domain, effector = "point_mass", "pointmass"
    state_names = ("x", "y", "x_vel", "y_vel")
    source = "dm_control suite point_mass"

    def _success(self, state: np.ndarray, goal: np.ndarray) -> bool:
        return self._distance(state, goal) <= self.model.geom_size[self._target, 0]

    def _pose_goal(self, data: mujoco.MjData, goal: np.ndarray) -> None:
        data.qpos[:2] = goal
        data.qvel[:] = 0.0
