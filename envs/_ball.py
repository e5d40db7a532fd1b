"""A ball on x/y slide joints whose goal is a position: shared by the point mass and the maze."""

from __future__ import annotations

from typing import ClassVar

import mujoco
import numpy as np

from envs.base import GoalTask


class BallTask(GoalTask):
    """Proprio (x, y, vx, vy); goal (x, y); success within ``success_radius`` of the goal.

    Subclasses provide the MJCF (the ball's two slide joints first in qpos, one mocap target
    marker) and the goal sampler/bounds.
    """

    goal_names = ("x", "y")
    state_names = ("x", "y", "vx", "vy")
    success_radius: ClassVar[float]

    def _proprio(self, data: mujoco.MjData) -> np.ndarray:
        return np.concatenate([data.qpos[:2], data.qvel[:2]])

    def _randomize_initial_state(self) -> None:
        self.data.qpos[:2] = self.sample_goal()

    def goal_from_state(self, state: np.ndarray) -> np.ndarray:
        return self.qpos_of(state)[:2].copy()

    def _pose_goal(self, data: mujoco.MjData, goal: np.ndarray) -> None:
        data.qpos[:2] = goal
        data.qvel[:] = 0.0

    def _place_marker(self, goal: np.ndarray) -> None:
        self.data.mocap_pos[0, :2] = goal

    def _distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        return float(np.linalg.norm(self.qpos_of(state)[:2] - goal))

    def _success(self, state: np.ndarray, goal: np.ndarray) -> bool:
        return self._distance(state, goal) < self.success_radius
