"""gym-pusht's Push-T (pymunk; ``pip install '.[benchmarks]'``): the Push-T LeWM (96%), PLDM and
DINO-WM report.

gym-pusht's own env (a round pusher driven by a PD controller toward a 2-D target position in
[0, 512]^2, given here as an action in [-1, 1]^2 mapped affinely onto it; 10 Hz control, 10 physics steps of 0.01 s per action; a T block) and its reset draw,
behind the planning-task API of :mod:`envs.adapters.base`:

* pixels drawn as gym-pusht draws them, without the green goal region (it is the answer);
* proprio: the pusher's position and velocity (gym-pusht's ``agent_pos``, plus its velocity);
* goal: the block's pose (x, y, angle); gym-pusht's own is fixed (256, 256, pi/4); a dataset
  goal's is the block's pose in the goal frame;
* success: gym-pusht's test, the block covering more than 95% of the goal T's area;
* distance (what the oracle minimises): the block's position error in pixels plus
  ``ANGLE_SCALE`` x its wrapped angle error in radians.

Branching: pymunk's mid-episode state cannot be copied exactly (contact caches), but a reset to a
pose followed by the same actions replays byte for byte. So the physics state is the block's and
pusher's pose and velocities (read by the distance and success tests), then the replay record:
the reset pose, the number of actions and the actions (padded to ``MAX_STEPS``). ``set_state``
replays; the oracle's candidates each replay from the episode's reset (slow: cost per candidate
grows with the steps already taken).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from envs.adapters.base import BenchmarkTask, benchmark_module
from envs.base import wrap_angle

MAX_STEPS = 512  # actions a replay record holds (an episode plus the oracle's look-ahead)
ANGLE_SCALE = 100.0  # pixels per radian in the distance
SUCCESS_COVERAGE = 0.95  # gym-pusht's success_threshold
POSE = 9  # agent x, y, vx, vy, block x, y, angle, vx, vy ... (the readable part; angular velocity last)


class GymPushT(BenchmarkTask):
    goal_names = ("block_x", "block_y", "block_angle")
    state_names = ("agent_x", "agent_y", "agent_vx", "agent_vy")
    default_camera = "top"
    source = "gym-pusht PushT"
    coverage_names = ("block_x", "block_y")
    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def _build(self) -> None:
        import gymnasium as gym

        benchmark_module("gym_pusht")  # registers gym_pusht/PushT-v0
        self._push = gym.make("gym_pusht/PushT-v0", obs_type="state", render_mode="rgb_array").unwrapped
        self._start = np.zeros(5)
        self._actions: list[np.ndarray] = []
        self._replay(self._start, [])

    def _setup_frames(self, camera: str | int) -> None:
        if camera not in ("top", 0):
            raise ValueError(f"unknown camera {camera!r}; gym-pusht draws one top-down view ('top')")
        self.camera, self.camera_name = 0, "top"

    def _action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return -np.ones(2), np.ones(2)  # gym-pusht's box [0, 512]^2, normalised as our tasks' actions

    def _target(self, action: np.ndarray) -> np.ndarray:
        """A normalised action -> gym-pusht's (the pusher's target position in pixels)."""
        low, high = (
            self._push.action_space.low.astype(np.float64),
            self._push.action_space.high.astype(np.float64),
        )
        return low + (np.asarray(action, np.float64) + 1.0) * 0.5 * (high - low)

    def _reset_benchmark(self, seed: int) -> np.ndarray:
        # gym-pusht's reset draw (pusher in [50, 450)^2, block in [100, 400)^2, angle in [-pi, pi)),
        # from the given seed; the start goes through its reset_to_state so a replay repeats it
        rng = np.random.default_rng(seed)
        start = np.array([rng.integers(50, 450), rng.integers(50, 450), rng.integers(100, 400),
                          rng.integers(100, 400), rng.uniform(-np.pi, np.pi)], dtype=np.float64)  # fmt: skip
        self._replay(start, [])
        return np.array(self._push.goal_pose, np.float64)

    def _replay(self, start: np.ndarray, actions: list[np.ndarray]) -> None:
        self._push.reset(options={"reset_to_state": start})
        for a in actions:
            self._push.step(self._target(a))
        self._start, self._actions = (
            np.asarray(start, np.float64).copy(),
            [np.asarray(a, np.float64) for a in actions],
        )

    def _advance(self, action: np.ndarray) -> None:
        if len(self._actions) >= MAX_STEPS:
            raise RuntimeError(
                f"gym-pusht adapter: an episode may take at most {MAX_STEPS} actions (its replay record)"
            )
        self._push.step(self._target(action))
        self._actions.append(np.asarray(action, np.float64).copy())

    def _pose(self) -> np.ndarray:
        agent, block = self._push.agent, self._push.block
        return np.array([*agent.position, *agent.velocity, *block.position, block.angle, *block.velocity,
                         block.angular_velocity], dtype=np.float64)  # fmt: skip

    def _proprio(self) -> np.ndarray:
        return self._pose()[:4]

    @property
    def state_size(self) -> int:
        return POSE + 1 + 5 + 1 + 2 * MAX_STEPS

    def get_state(self) -> np.ndarray:
        record = np.zeros(2 * MAX_STEPS)
        if self._actions:
            record[: 2 * len(self._actions)] = np.concatenate(self._actions)
        return np.concatenate([self._pose(), self._start, [len(self._actions)], record])

    def set_state(self, state: np.ndarray) -> None:
        state = self._check_state(state)
        start, n = state[POSE + 1 : POSE + 6], int(state[POSE + 6])
        if not 0 <= n <= MAX_STEPS:
            raise ValueError(f"physics state holds {n} actions; a replay record holds 0-{MAX_STEPS}")
        self._replay(start, list(state[POSE + 7 : POSE + 7 + 2 * n].reshape(n, 2)))

    def goal_from_state(self, state: np.ndarray) -> np.ndarray:
        s = self._check_state(state)
        return np.array([s[4], s[5], wrap_angle(s[6])])

    def _set_benchmark_goal(self, goal: np.ndarray) -> None:
        self._push.goal_pose = np.asarray(goal, np.float64).copy()

    def _distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        pose = self.goal_from_state(state)
        return float(np.hypot(*(pose[:2] - goal[:2])) + ANGLE_SCALE * abs(wrap_angle(pose[2] - goal[2])))

    def _success(self, state: np.ndarray, goal: np.ndarray) -> bool:
        return self._coverage(self.goal_from_state(state), goal) > SUCCESS_COVERAGE

    def _coverage(self, pose: np.ndarray, goal: np.ndarray) -> float:
        """gym-pusht's coverage: the share of the goal T's area the block at ``pose`` covers."""
        from gym_pusht.envs.pusht import pymunk_to_shapely

        shapes = self._push.block.shapes
        at, target = (
            self._push.get_goal_pose_body(np.asarray(pose)),
            self._push.get_goal_pose_body(np.asarray(goal)),
        )
        goal_geom = pymunk_to_shapely(target, shapes)
        return goal_geom.intersection(pymunk_to_shapely(at, shapes)).area / goal_geom.area

    # -- frames ------------------------------------------------------------------------------

    def _draw(self, markers: bool) -> np.ndarray:
        import pygame
        from gym_pusht.envs.pymunk_override import DrawOptions

        push = self._push
        if markers:  # gym-pusht's own drawing, goal region included
            screen = push._draw()
        else:
            screen = pygame.Surface((512, 512))
            screen.fill((255, 255, 255))
            push.space.debug_draw(DrawOptions(screen))
        h, w = self.image_hw
        return push._get_img(screen, width=w, height=h)

    def _frame(self, markers: bool = False) -> np.ndarray:
        return np.ascontiguousarray(self._draw(markers))

    def _frame_of_state(self, state: np.ndarray) -> np.ndarray:
        here = self.get_state()
        self.set_state(state)
        try:
            return self._frame()
        finally:
            self.set_state(here)

    def _frame_of_goal(self, goal: np.ndarray) -> np.ndarray:
        here, block = self.get_state(), self._push.block
        block.angle = goal[2]  # angle first: the pose is the body's, as the coverage test reads it
        block.position = tuple(goal[:2])
        self._push.space.reindex_shapes_for_body(block)  # shapes cache their world vertices
        try:
            return self._frame()
        finally:
            self.set_state(here)  # a replay: pymunk keeps no trace of the posing

    def coverage_coords(self, states: np.ndarray) -> np.ndarray:
        return np.asarray(states)[:, 4:6]

    def coverage_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([0.0, 0.0]), np.array([512.0, 512.0])

    def close(self) -> None:
        self._push.close()
