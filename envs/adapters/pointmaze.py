"""gymnasium-robotics PointMaze (``pip install '.[benchmarks]'``): the maze DINO-WM and JEPA-WMs report.

The benchmark's own env (``PointMaze_UMaze-v3`` by default, D4RL maze2d dynamics: a 2-D force on a
ball, velocity clipped, dt 0.01, one physics step per action) and its reset draw (start and goal
cells with uniform noise), behind the planning-task API of :mod:`envs.adapters.base`:

* pixels from a top-down camera over the whole maze (the model has none; the env's default
  view is oblique); the goal site is in group 3, so observations and goal images hide it;
* proprio: the ball's (x, y, vx, vy), the env's ``observation`` (its ``desired_goal`` stays out);
* goal: the ball's target (x, y); a dataset goal's is the ball's position in the goal frame;
* success: the env's own test, the ball within 0.45 of the goal.

| id                      | maze            | action (A)         | state (P)     |
|-------------------------|-----------------|--------------------|---------------|
| wm/pointmaze-umaze-v0   | PointMaze_UMaze | force x, y in [-1, 1] | x, y, vx, vy |
"""

from __future__ import annotations

from typing import ClassVar

import mujoco
import numpy as np

from envs.adapters.base import MujocoBenchmark, benchmark_module
from envs.base import MARKER_GROUP

SUCCESS_RADIUS = 0.45  # gymnasium-robotics maze envs: info["success"]


class PointMazeTask(MujocoBenchmark):
    goal_names = ("x", "y")
    state_names = ("x", "y", "x_vel", "y_vel")
    default_camera = -1  # replaced by the top-down view below
    source = "gymnasium-robotics PointMaze"
    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 100}

    def __init__(self, maze: str = "PointMaze_UMaze-v3", **kwargs):
        self.maze_id = maze
        super().__init__(**kwargs)
        self._frames.camera = self.camera = self._top_camera()
        self.camera_name = "top"

    def _build(self) -> None:
        import gymnasium as gym

        # its import prints a notice about its Adroit envs (not used here) to stderr
        gym.register_envs(benchmark_module("gymnasium_robotics", quiet=True))
        self._maze_env = gym.make(self.maze_id, continuing_task=True, render_mode=None).unwrapped
        self._point = self._maze_env.point_env
        self.model, self.data = self._point.model, self._point.data
        site = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, "target")
        self.model.site_group[site] = MARKER_GROUP

    def _top_camera(self) -> mujoco.MjvCamera:
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        maze = self._maze_env.maze
        cam.lookat[:] = 0.0, 0.0, 0.0
        half = max(maze.x_map_center, maze.y_map_center)
        cam.distance = 1.05 * half / np.tan(np.deg2rad(self.model.vis.global_.fovy / 2))
        cam.elevation, cam.azimuth = -90.0, 90.0
        return cam

    def _action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        space = self._maze_env.action_space
        return np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)

    def _reset_benchmark(self, seed: int) -> np.ndarray:
        self._maze_env.reset(seed=seed)
        return np.asarray(self._maze_env.goal, np.float64).copy()

    def _advance(self, action: np.ndarray) -> None:
        self._point.step(action)  # the benchmark's step: velocity clip, then the physics

    def _proprio(self) -> np.ndarray:
        return np.concatenate([self.data.qpos[:2], self.data.qvel[:2]])

    def goal_from_state(self, state: np.ndarray) -> np.ndarray:
        return self.qpos_of(state)[:2].copy()

    def _set_benchmark_goal(self, goal: np.ndarray) -> None:
        self._maze_env.goal = np.asarray(goal, np.float64).copy()
        self._maze_env.update_target_site_pos()

    def _pose_goal(self, data: mujoco.MjData, goal: np.ndarray) -> None:
        data.qpos[:2] = goal
        data.qvel[:] = 0.0

    def _distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        return float(np.linalg.norm(self.qpos_of(state)[:2] - goal))

    def _success(self, state: np.ndarray, goal: np.ndarray) -> bool:
        return self._distance(state, goal) <= SUCCESS_RADIUS

    def coverage_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        maze = self._maze_env.maze
        return np.array([-maze.x_map_center, -maze.y_map_center]), np.array(
            [maze.x_map_center, maze.y_map_center]
        )

    def coverage_mask(self, bins: int) -> np.ndarray:
        """Grid cells (x bins, y bins) whose centre lies in a free maze cell."""
        maze = self._maze_env.maze
        (x0, y0), (x1, y1) = self.coverage_bounds()
        xs = x0 + (np.arange(bins) + 0.5) * (x1 - x0) / bins
        ys = y0 + (np.arange(bins) + 0.5) * (y1 - y0) / bins
        grid = np.asarray(maze.maze_map)
        free = np.zeros((bins, bins), bool)
        for i, x in enumerate(xs):
            for j, y in enumerate(ys):
                row, col = maze.cell_xy_to_rowcol(np.array([x, y]))
                free[i, j] = grid[int(row), int(col)] == 0
        return free
