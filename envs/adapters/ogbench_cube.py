"""OGBench cube (``pip install '.[benchmarks]'``): the single-cube task LeWM reports (Cube 74%).

OGBench's own ``CubeEnv`` (a UR5e arm with a Robotiq gripper; 5-D actions: end-effector
displacement x, y, z, yaw and gripper, turned into joint targets by its differential IK; 20 Hz
control, 25 physics steps per action) and its five evaluation tasks (``task_id`` 1-5: the cube's
start and goal), behind the planning-task API of :mod:`envs.adapters.base`:

* pixels from its camera ``front_pixels``, rendered by our renderer with shadows off (OGBench
  renders a 4096 shadow map: the same scene at several times the rate, slightly different
  pixels); its success colouring is off (``visualize_info=False``: a frame must not show the
  answer) and the target cube is in geom group 3;
* proprio: OGBench's ``proprio/*`` entries (arm joint positions and velocities, effector position
  and yaw, gripper opening, velocity and contact), none of the goal;
* the task is drawn from the env's seed (OGBench draws it from numpy's global generator when
  none is given); a goal is the cube's target position, a dataset goal's the cube's position in
  the goal frame;
* success: OGBench's test, the cube within 0.04 of its target.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import mujoco
import numpy as np

from envs.adapters.base import MujocoBenchmark, benchmark_module
from envs.base import MARKER_GROUP

SUCCESS_RADIUS = 0.04  # ogbench CubeEnv._compute_successes
PROPRIO = ("joint_pos", "joint_vel", "effector_pos", "effector_yaw", "gripper_opening", "gripper_vel",
           "gripper_contact")  # fmt: skip


class OGBenchCube(MujocoBenchmark):
    goal_names = ("cube_x", "cube_y", "cube_z")
    state_names = (
        *(f"joint{i}" for i in range(6)), *(f"joint{i}_vel" for i in range(6)), "effector_x", "effector_y",
        "effector_z", "effector_yaw", "gripper_opening", "gripper_vel", "gripper_contact",
    )  # fmt: skip
    angle_dims = (*range(6), 15)
    default_camera = "front_pixels"
    source = "OGBench cube-single"
    coverage_names = ("cube_x", "cube_y")
    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, env_id: str = "cube-single-v0", **kwargs):
        self.env_id = env_id
        super().__init__(**kwargs)

    def _build(self) -> None:
        import gymnasium as gym

        benchmark_module("ogbench")  # registers its envs
        with warnings.catch_warnings():  # it builds float64 Box spaces; gymnasium warns on each
            warnings.filterwarnings("ignore", message=".*precision lowered")
            self._cube = gym.make(self.env_id, visualize_info=False, terminate_at_goal=False).unwrapped
            self._cube.reset(seed=0, options={"task_id": 1})  # OGBench compiles its model at the first reset
            space = self._cube.action_space  # a new Box at each access
            self._bounds = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
        self.model, self.data = self._cube._model, self._cube._data
        for gid in self._cube._cube_target_geom_ids_list[0]:
            self.model.geom_group[gid] = MARKER_GROUP
        self._cube_qpos = self.model.jnt_qposadr[
            mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, "object_joint_0")
        ]
        self._target_mocap = self._cube._cube_target_mocap_ids[0]

    def _action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self._bounds

    def _reset_benchmark(self, seed: int) -> np.ndarray:
        task_id = int(np.random.default_rng(seed).integers(1, self._cube.num_tasks + 1))
        with warnings.catch_warnings():  # its reset builds float64 Box spaces; gymnasium warns on each
            warnings.filterwarnings("ignore", message=".*precision lowered")
            self._cube.reset(seed=seed, options={"task_id": task_id})
        if self._cube._model is not self.model:
            raise RuntimeError("OGBench rebuilt its MuJoCo model on reset; the adapter holds the old one")
        return self.data.mocap_pos[self._target_mocap].copy()

    def _advance(self, action: np.ndarray) -> None:
        cube = self._cube  # its step without the episode bookkeeping: IK control, physics, success
        cube.set_control(np.asarray(action))
        cube.pre_step()
        mujoco.mj_step(self.model, self.data, nstep=cube._n_steps)
        mujoco.mj_rnePostConstraint(self.model, self.data)
        cube.post_step()

    def _proprio(self) -> np.ndarray:
        info = self._cube.compute_ob_info()
        return np.concatenate([np.asarray(info[f"proprio/{k}"], np.float64).reshape(-1) for k in PROPRIO])

    def goal_from_state(self, state: np.ndarray) -> np.ndarray:
        return self.qpos_of(state)[self._cube_qpos : self._cube_qpos + 3].copy()

    def _set_benchmark_goal(self, goal: np.ndarray) -> None:
        self.data.mocap_pos[self._target_mocap] = goal
        self.data.mocap_quat[self._target_mocap] = (1.0, 0.0, 0.0, 0.0)
        for gid in self._cube._cube_target_geom_ids_list[0]:  # drawn for people (group 3: never observed)
            self.model.geom_rgba[gid, 3] = 0.3

    def _pose_goal(self, data: mujoco.MjData, goal: np.ndarray) -> None:
        a = self._cube_qpos
        data.qpos[a : a + 3] = goal
        data.qpos[a + 3 : a + 7] = (1.0, 0.0, 0.0, 0.0)
        data.qvel[:] = 0.0

    def _distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        return float(np.linalg.norm(self.goal_from_state(state) - goal))

    def _success(self, state: np.ndarray, goal: np.ndarray) -> bool:
        return self._distance(state, goal) <= SUCCESS_RADIUS

    def coverage_coords(self, states: np.ndarray) -> np.ndarray:
        return np.stack([self.goal_from_state(s)[:2] for s in np.asarray(states)])

    def coverage_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        (x0, y0), (x1, y1) = self._cube._object_sampling_bounds
        return np.array([x0, y0]), np.array([x1, y1])
