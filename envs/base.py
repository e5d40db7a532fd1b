"""Base class for our goal-conditioned MuJoCo tasks: pixels + proprio, goals, state branching.

Every task subclasses :class:`GoalTask` and supplies its MJCF model, its proprio read-out, a
goal parameterisation, and a success test in state space. The base class owns what is common:

* observation ``{"pixels": (H, W, 3) uint8, "state": (P,) float32}``;
* goals set through ``reset(options={"goal": ...})`` or ``{"goal_state": physics_state}``, else
  sampled by the task; a goal image rendered with the target marker hidden;
* ``get_state()`` / ``set_state()``: the full MuJoCo integration state, so planners and oracles
  can branch and restore exactly;
* fast headless rendering: the offscreen buffer is sized to the frame and shadows/reflections
  are off; all randomness comes from ``self.np_random``.

Rendering: goal markers live in geom group 3 (``MARKER_GROUP``). Observations and goal images
never show them (the world model must not see the answer); ``render()`` (for people) shows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from envs._render import MARKER_GROUP, FrameRenderer, camera_id, camera_name, size_buffer

_STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION
__all__ = ["MARKER_GROUP", "GoalTask", "PlanningTask", "parse_size", "wrap_angle"]


def wrap_angle(a: np.ndarray | float) -> np.ndarray:
    """Wrap angles to [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def parse_size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(image_size, int | np.integer):
        h = w = int(image_size)
    else:
        h, w = (int(s) for s in image_size)
    if h < 8 or w < 8 or h > 4096 or w > 4096:
        raise ValueError(f"image_size must be between 8 and 4096 pixels per side, got {(h, w)}")
    return h, w


class PlanningTask(gym.Env):
    """What planning, collection and evaluation use of a task, shared by our MuJoCo tasks
    (:class:`GoalTask`) and the peers' benchmarks behind :mod:`envs.adapters`: the goal and its
    image, the state-space success test and distance, option and input checks, the step's info.
    Subclasses provide ``get_state``, ``state_size``, ``_distance``, ``_success``, ``_check_goal``."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    #: names of the goal vector's entries (its length is the goal dimension)
    goal_names: ClassVar[tuple[str, ...]] = ()
    #: names of the proprio state entries
    state_names: ClassVar[tuple[str, ...]] = ()
    #: proprio state entries that are joint angles in radians (world models encode them as (cos, sin))
    angle_dims: ClassVar[tuple[int, ...]] = ()
    #: names of the two coordinates ``coverage_coords`` returns
    coverage_names: ClassVar[tuple[str, str]] = ("x", "y")

    _goal: np.ndarray
    _goal_image: np.ndarray | None
    camera_name: str

    @property
    def camera_names(self) -> tuple[str, ...]:
        """The cameras whose frames ``pixels`` stacks along its channels, in order."""
        return (self.camera_name,)

    def _set_spaces(self, low: np.ndarray, high: np.ndarray) -> None:
        """The action box (A,) and the observation ``{"pixels": (H, W, 3) uint8, "state": (P,)}``
        at ``self.image_hw``."""
        h, w = self.image_hw
        self.action_space = spaces.Box(
            np.asarray(low, np.float32), np.asarray(high, np.float32), dtype=np.float32
        )
        self.observation_space = spaces.Dict(
            {
                "pixels": spaces.Box(0, 255, shape=(h, w, 3 * len(self.camera_names)), dtype=np.uint8),
                "state": spaces.Box(-np.inf, np.inf, shape=(len(self.state_names),), dtype=np.float32),
            }
        )

    # -- hooks every task implements ----------------------------------------------------------

    def goal_from_state(self, state: np.ndarray) -> np.ndarray:
        """The goal vector (G,) that a full physics state achieves (a dataset goal's frame)."""
        raise NotImplementedError

    def _distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        """State-space distance of a physics state to a goal vector (task units)."""
        raise NotImplementedError

    def _success(self, state: np.ndarray, goal: np.ndarray) -> bool:
        """The success test on a physics state and a goal vector (the task's or benchmark's own)."""
        raise NotImplementedError

    # -- shared machinery -----------------------------------------------------------------------

    def _check_render_mode(self, render_mode: str | None) -> str | None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None")
        return render_mode

    @property
    def goal(self) -> np.ndarray:
        """The current goal vector (G,); a copy."""
        return self._goal.copy()

    def goal_image(self) -> np.ndarray:
        """The current goal rendered with the target marker hidden: (H, W, 3) uint8 (a copy)."""
        if self._goal_image is None:
            raise RuntimeError("no goal yet: call reset() first")
        return self._goal_image.copy()

    def goal_distance(self, state: np.ndarray | None = None, goal: np.ndarray | None = None) -> float:
        """State-space distance to the goal (task units) of ``state`` (default: the current
        physics state) and ``goal`` (default: the current goal). Used by oracles and reports."""
        state = self.get_state() if state is None else self._check_state(state)
        return float(self._distance(state, self._goal if goal is None else np.asarray(goal, np.float64)))

    def is_success(self, state: np.ndarray | None = None, goal: np.ndarray | None = None) -> bool:
        """The task's success test in state space (defaults as ``goal_distance``).
        For evaluation only: no planner or cost may call it."""
        state = self.get_state() if state is None else self._check_state(state)
        return bool(self._success(state, self._goal if goal is None else np.asarray(goal, np.float64)))

    def _reset_options(self, options: dict[str, Any] | None):
        """The reset options checked before anything is touched (a bad option changes nothing):
        (start state or None, goal physics state or None, goal vector or None)."""
        options = dict(options or {})
        unknown = set(options) - {"goal", "goal_state", "state"}
        if unknown:
            raise ValueError(
                f"unknown reset option(s) {sorted(unknown)}; expected 'goal', 'goal_state', 'state'"
            )
        if "goal" in options and "goal_state" in options:
            raise ValueError("give either 'goal' or 'goal_state', not both")
        start = self._check_state(options["state"]) if "state" in options else None
        goal_state = self._check_state(options["goal_state"]) if "goal_state" in options else None
        goal = self._check_goal(options["goal"]) if "goal" in options else None
        return start, goal_state, goal

    def _check_action(self, action) -> np.ndarray:
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action contains NaN or inf: {action}")
        return action

    def _check_state(self, state) -> np.ndarray:
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (self.state_size,):
            raise ValueError(
                f"physics state must have shape ({self.state_size},) as returned by get_state(), "
                f"got {state.shape}"
            )
        if not np.all(np.isfinite(state)):
            raise ValueError("physics state contains NaN or inf")
        return state

    def _info(self) -> dict[str, Any]:
        state = self.get_state()
        return {
            "is_success": bool(self.is_success(state)),
            "goal_distance": float(self.goal_distance(state)),
            "goal": self._goal.copy(),
        }


class GoalTask(PlanningTask):
    """A goal-conditioned MuJoCo task with pixel + proprio observations.

    Subclasses define the class attributes and the abstract hooks below.
    """

    #: MuJoCo steps per env step
    frame_skip: ClassVar[int] = 5
    #: default camera name in the MJCF model
    default_camera: ClassVar[str] = "top"

    def __init__(
        self,
        image_size: int | tuple[int, int] = 64,
        camera: str | int | Sequence[str | int] | None = None,
        render_mode: str | None = "rgb_array",
        msaa_samples: int = 4,
    ):
        """``camera``: a camera name or id (-1: MuJoCo's free camera), or several: their frames are
        stacked along the channels, ``pixels`` (H, W, 3K) in the order given (goal images too)."""
        if msaa_samples not in (0, 1, 2, 4, 8, 16):
            raise ValueError(f"msaa_samples must be one of 0, 1, 2, 4, 8, 16, got {msaa_samples}")
        self.render_mode = self._check_render_mode(render_mode)
        self.image_hw = parse_size(image_size)
        self.model = mujoco.MjModel.from_xml_string(self._mjcf())
        h, w = self.image_hw
        size_buffer(self.model, h, w, msaa_samples)
        self.data = mujoco.MjData(self.model)
        self._scratch = mujoco.MjData(self.model)  # for goal images; never stepped
        if camera is None:
            camera = self.default_camera
        asked = [camera] if isinstance(camera, (str, int)) else list(camera)
        if not asked:
            raise ValueError("camera: name at least one camera")
        ids = [camera_id(self.model, c) for c in asked]
        self._camera_names = tuple(camera_name(self.model, i) for i in ids)
        if len(set(self._camera_names)) < len(ids):
            raise ValueError(f"camera: {self._camera_names} names a camera twice")
        self.camera, self.camera_name = ids[0], self._camera_names[0]
        self._views = [FrameRenderer(self.model, self.image_hw, i) for i in ids]
        self._frames = self._views[0]  # the first camera: render() for people
        self._goal = np.zeros(len(self.goal_names))
        self._goal_image: np.ndarray | None = None
        self._ctrl_low = self.model.actuator_ctrlrange[:, 0].copy()
        self._ctrl_high = self.model.actuator_ctrlrange[:, 1].copy()
        self._set_spaces(-np.ones(self.model.nu), np.ones(self.model.nu))

    @property
    def camera_names(self) -> tuple[str, ...]:
        return self._camera_names

    # -- hooks each task implements ---------------------------------------------------------

    def _mjcf(self) -> str:
        """The task's MJCF model as a string."""
        raise NotImplementedError

    def _proprio(self, data: mujoco.MjData) -> np.ndarray:
        """Proprio state read from ``data`` -> (P,)."""
        raise NotImplementedError

    def _randomize_initial_state(self) -> None:
        """Write a random initial configuration into ``self.data`` (qpos/qvel) using np_random."""
        raise NotImplementedError

    def sample_goal(self, rng: np.random.Generator | None = None) -> np.ndarray:
        """A random reachable goal vector (G,), drawn from ``rng`` (default: the env's)."""
        raise NotImplementedError

    def goal_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Inclusive (low, high) bounds of a valid goal vector, each (G,)."""
        raise NotImplementedError

    def _validate_goal(self, goal: np.ndarray) -> None:
        """Task-specific reachability checks beyond the box bounds (raise ValueError)."""

    def _pose_goal(self, data: mujoco.MjData, goal: np.ndarray) -> None:
        """Put the scene in ``data`` into the configuration the goal describes (for its image)."""
        raise NotImplementedError

    def _place_marker(self, goal: np.ndarray) -> None:
        """Move the target marker (mocap bodies in group 3) to show ``goal``."""
        raise NotImplementedError

    # -- coverage of the workspace (data-collection reports) ---------------------------------

    def coverage_coords(self, states: np.ndarray) -> np.ndarray:
        """Physics states (N, S) -> the two coordinates whose coverage matters (N, 2)."""
        return np.asarray(states)[:, 1:3]  # qpos[:2]

    def coverage_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.goal_bounds()
        return lo[:2], hi[:2]

    def coverage_mask(self, bins: int) -> np.ndarray:
        """(bins, bins) bool: grid cells the coordinates can reach at all."""
        return np.ones((bins, bins), bool)

    def _apply_action(self, action: np.ndarray) -> None:
        """Map a normalised action in [-1, 1]^A onto actuator controls."""
        self.data.ctrl[:] = self._ctrl_low + (action + 1.0) * 0.5 * (self._ctrl_high - self._ctrl_low)

    # -- public API -------------------------------------------------------------------------

    def observe(self) -> dict[str, np.ndarray]:
        """The current observation (as ``step`` returned it), rendered again."""
        return self._get_obs()

    def get_state(self) -> np.ndarray:
        """Full physics state (MuJoCo integration state: time, qpos, qvel, act, ctrl, mocap,
        warm-start, ...) as a float64 vector; ``set_state`` restores it exactly."""
        state = np.empty(mujoco.mj_stateSize(self.model, _STATE_SPEC))
        mujoco.mj_getState(self.model, self.data, state, _STATE_SPEC)
        return state

    def set_state(self, state: np.ndarray) -> None:
        """Restore a state from ``get_state()`` (the goal is not part of it)."""
        self._write_state(self.data, state)

    @property
    def state_size(self) -> int:
        return mujoco.mj_stateSize(self.model, _STATE_SPEC)

    def qpos_of(self, state: np.ndarray) -> np.ndarray:
        """The qpos slice of a full physics state vector."""
        state = self._check_state(state)
        return state[1 : 1 + self.model.nq]

    def qvel_of(self, state: np.ndarray) -> np.ndarray:
        state = self._check_state(state)
        return state[1 + self.model.nq : 1 + self.model.nq + self.model.nv]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Reset; ``options`` may hold:

        - ``"goal"``: goal vector (G,) within ``goal_bounds()``;
        - ``"goal_state"``: a physics state (from ``get_state()``) whose configuration is the goal
          (dataset goal mode: the goal image is that state rendered);
        - ``"state"``: a physics state to start from instead of a random initial state.
        Without a goal option a random reachable goal is sampled.
        """
        super().reset(seed=seed)
        start, goal_state, goal = self._reset_options(options)
        mujoco.mj_resetData(self.model, self.data)
        if start is not None:
            self._write_state(self.data, start)
        else:
            self._randomize_initial_state()
        mujoco.mj_forward(self.model, self.data)

        if goal_state is not None:
            self._scratch_from_state(goal_state)
            goal = self.goal_from_state(goal_state)
            self._set_goal(goal, posed=True)
        else:
            self._set_goal(self.sample_goal() if goal is None else goal, posed=False)
        obs = self._get_obs()
        return obs, self._info()

    def step(self, action):
        action = self._check_action(action)
        self.advance(np.clip(action, -1.0, 1.0))
        # mj_step leaves positions (xpos) one sub-step behind qpos; recompute them so the
        # observation shows exactly the state get_state() returns. State-neutral.
        mujoco.mj_forward(self.model, self.data)
        obs = self._get_obs()
        reward, info = self._get_rew()
        return obs, reward, False, False, info

    def advance(self, action: np.ndarray) -> None:
        """One env step of the physics for a clipped action (A,): the action map, then
        ``frame_skip`` MuJoCo steps; no rendering (what ``step`` and the oracle share)."""
        self._apply_action(action)
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)

    def render(self) -> np.ndarray | None:
        """Human-facing frame: the observation camera with the target marker shown."""
        if self.render_mode is None:
            return None
        return self._frames.render(self.data, markers=True)

    def close(self) -> None:
        for view in self._views:
            view.close()

    # -- internals --------------------------------------------------------------------------

    def _check_goal(self, goal) -> np.ndarray:
        goal = np.asarray(goal, dtype=np.float64)
        g = len(self.goal_names)
        if goal.shape != (g,):
            raise ValueError(f"goal must have shape ({g},) = {self.goal_names}, got {goal.shape}")
        low, high = self.goal_bounds()
        bad = ~((goal >= low - 1e-9) & (goal <= high + 1e-9))
        if bad.any():
            details = ", ".join(
                f"{self.goal_names[i]}={goal[i]:.4g} not in [{low[i]:.4g}, {high[i]:.4g}]"
                for i in np.flatnonzero(bad)
            )
            raise ValueError(f"goal out of bounds: {details}")
        self._validate_goal(goal)
        return goal

    def _write_state(self, data: mujoco.MjData, state: np.ndarray) -> None:
        mujoco.mj_setState(self.model, data, self._check_state(state), _STATE_SPEC)
        mujoco.mj_forward(self.model, data)

    def _scratch_from_state(self, state: np.ndarray) -> None:
        mujoco.mj_resetData(self.model, self._scratch)
        self._write_state(self._scratch, state)

    def _set_goal(self, goal: np.ndarray, posed: bool) -> None:
        """Store the goal, move the marker, render the goal image (marker hidden)."""
        self._goal = np.asarray(goal, dtype=np.float64).copy()
        self._place_marker(self._goal)
        mujoco.mj_forward(self.model, self.data)
        if not posed:
            mujoco.mj_resetData(self.model, self._scratch)
            self._scratch.qpos[:] = self.data.qpos
            self._pose_goal(self._scratch, self._goal)
            mujoco.mj_forward(self.model, self._scratch)
        self._goal_image = self._pixels(self._scratch)

    def _pixels(self, data: mujoco.MjData) -> np.ndarray:
        """The observation cameras' frames of ``data``, stacked along the channels -> (H, W, 3K)."""
        if len(self._views) == 1:
            return self._frames.render(data)
        return np.concatenate([view.render(data) for view in self._views], axis=-1)

    def _get_obs(self) -> dict[str, np.ndarray]:
        return {
            "pixels": self._pixels(self.data),
            "state": self._proprio(self.data).astype(np.float32),
        }

    def _get_rew(self) -> tuple[float, dict[str, Any]]:
        info = self._info()
        return -info["goal_distance"], info
