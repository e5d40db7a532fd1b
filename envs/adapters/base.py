"""A peer benchmark's environment behind the planning-task API of our own tasks.

The published numbers of LeWM, DINO-WM and JEPA-WMs come from other people's environments
(dm_control, gymnasium-robotics, OGBench). :class:`BenchmarkTask` wraps such an env, keeping its
physics, reset distribution and success test, and offers what planning, collection and
evaluation use on :class:`envs.base.GoalTask`:

* observation ``{"pixels": (H, W, 3) uint8, "state": (P,) float32}``, where the proprio never
  holds the goal (a benchmark's ``to_target`` or ``desired_goal`` would leak the answer);
* goals through ``reset(options={"goal": ..., "goal_state": ..., "state": ...})`` as on our tasks,
  else the benchmark's own draw; the goal image rendered with the target marker hidden;
* ``get_state()`` / ``set_state()`` restoring the simulation exactly, and ``advance(action)`` (one
  env step without rendering), so the oracle branches by restoring;
* the benchmark's own success test (``is_success``) and a distance in its units.

Subclasses implement the hooks below for one MuJoCo-based benchmark; the base class owns the
reset options, goal images, observations and info. Shapes: ``P`` proprio, ``G`` goal, ``A``
action dims.
"""

from __future__ import annotations

from typing import Any, ClassVar

import mujoco
import numpy as np

from envs._render import FrameRenderer, camera_id, camera_name, size_buffer
from envs.base import PlanningTask, parse_size

_STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION


def benchmark_module(name: str, quiet: bool = False):
    """Import a benchmark's package (``quiet``: its import-time notices on stderr dropped); a
    missing one raises naming the extra that installs it."""
    import contextlib
    import importlib
    import io

    try:
        with contextlib.redirect_stderr(io.StringIO()) if quiet else contextlib.nullcontext():
            return importlib.import_module(name)
    except ImportError as e:
        raise ImportError(
            f"{name} is not installed: the benchmark adapters need pip install '.[benchmarks]'"
        ) from e


class BenchmarkTask(PlanningTask):
    """A goal-conditioned view of a benchmark env (one of the peers')."""

    #: default camera (name or id in the benchmark's model)
    default_camera: ClassVar[str | int] = 0
    #: the benchmark, for reports (package and env name)
    source: ClassVar[str] = ""

    def __init__(self, image_size: int | tuple[int, int] = 64, camera: str | int | None = None,
                 render_mode: str | None = "rgb_array"):  # fmt: skip
        self.render_mode = self._check_render_mode(render_mode)
        self.image_hw = parse_size(image_size)
        self._build()
        self._setup_frames(self.default_camera if camera is None else camera)
        self._goal = np.zeros(len(self.goal_names))
        self._goal_image: np.ndarray | None = None
        self._set_spaces(*self._action_bounds())

    # -- hooks each adapter implements ----------------------------------------------------------

    def _build(self) -> None:
        """Create the benchmark's env."""
        raise NotImplementedError

    def _setup_frames(self, camera: str | int) -> None:
        """Prepare rendering from ``camera`` at ``self.image_hw``; sets ``self.camera_name``."""
        raise NotImplementedError

    def _frame(self, markers: bool = False) -> np.ndarray:
        """The current scene (H, W, 3) uint8; the target drawn only with ``markers``."""
        raise NotImplementedError

    def _frame_of_state(self, state: np.ndarray) -> np.ndarray:
        """The scene of a physics state, target hidden (a dataset goal's image); changes nothing."""
        raise NotImplementedError

    def _frame_of_goal(self, goal: np.ndarray) -> np.ndarray:
        """The current scene posed to show ``goal`` reached, target hidden; changes nothing."""
        raise NotImplementedError

    @property
    def state_size(self) -> int:
        raise NotImplementedError

    def get_state(self) -> np.ndarray:
        """The benchmark's full simulation state (float64); ``set_state`` restores it exactly."""
        raise NotImplementedError

    def set_state(self, state: np.ndarray) -> None:
        raise NotImplementedError

    def advance(self, action: np.ndarray) -> None:
        """One env step for a clipped action (A,) without rendering (what ``step`` and the oracle share)."""
        self._advance(action)

    def _action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _reset_benchmark(self, seed: int) -> np.ndarray:
        """Reset the benchmark's env from ``seed`` (its own start and goal draw) -> its goal (G,)."""
        raise NotImplementedError

    def _advance(self, action: np.ndarray) -> None:
        """One env step of the benchmark's physics for ``action`` (A,), without rendering."""
        raise NotImplementedError

    def _proprio(self) -> np.ndarray:
        """Proprio (P,) of the current simulation, with no goal in it."""
        raise NotImplementedError

    def _set_benchmark_goal(self, goal: np.ndarray) -> None:
        """Move the benchmark's target to ``goal`` (its success test and marker follow)."""
        raise NotImplementedError

    def coverage_coords(self, states: np.ndarray) -> np.ndarray:
        """Physics states (N, S) -> two coordinates whose coverage matters (N, 2)."""
        raise NotImplementedError

    def coverage_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def coverage_mask(self, bins: int) -> np.ndarray:
        return np.ones((bins, bins), bool)

    # -- the planning-task API ------------------------------------------------------------------

    def observe(self) -> dict[str, np.ndarray]:
        return {"pixels": self._frame(), "state": self._proprio().astype(np.float32)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Reset; ``options`` as on our tasks: ``"state"`` (a start from ``get_state()``),
        ``"goal_state"`` (a physics state whose configuration is the goal) or ``"goal"`` (a goal
        vector). Without them the benchmark draws start and goal itself."""
        super().reset(seed=seed)
        start, goal_state, goal = self._reset_options(options)
        drawn = self._reset_benchmark(int(self.np_random.integers(2**31 - 1)))
        if start is not None:
            self.set_state(start)
        if goal_state is not None:
            goal = self.goal_from_state(goal_state)
        self._goal = np.asarray(drawn if goal is None else goal, np.float64).copy()
        self._set_benchmark_goal(self._goal)
        self._goal_image = (
            self._frame_of_state(goal_state) if goal_state is not None else self._frame_of_goal(self._goal)
        )
        return self.observe(), self._info()

    def step(self, action):
        action = self._check_action(action)
        self.advance(np.clip(action, self.action_space.low, self.action_space.high))
        info = self._info()
        return self.observe(), -info["goal_distance"], False, False, info

    def render(self) -> np.ndarray | None:
        """Human-facing frame: the observation camera with the target marker shown."""
        return None if self.render_mode is None else self._frame(markers=True)

    # -- internals ------------------------------------------------------------------------------

    def _check_goal(self, goal) -> np.ndarray:
        goal = np.asarray(goal, dtype=np.float64)
        if goal.shape != (len(self.goal_names),):
            raise ValueError(
                f"goal must have shape ({len(self.goal_names)},) = {self.goal_names}, got {goal.shape}"
            )
        if not np.all(np.isfinite(goal)):
            raise ValueError("goal contains NaN or inf")
        return goal


class MujocoBenchmark(BenchmarkTask):
    """A MuJoCo-based benchmark: ``_build`` sets ``self.model`` / ``self.data`` to the benchmark's
    own MuJoCo objects; state is MuJoCo's integration state; frames come from our renderer
    (buffer sized to the frame, shadows off, group 3 hidden)."""

    model: mujoco.MjModel
    data: mujoco.MjData

    def _setup_frames(self, camera: str | int) -> None:
        h, w = self.image_hw
        size_buffer(self.model, h, w)
        self.camera = camera_id(self.model, camera)
        self.camera_name = camera_name(self.model, self.camera)
        self._frames = FrameRenderer(self.model, self.image_hw, self.camera)
        self._scratch = mujoco.MjData(self.model)  # goal images; never stepped

    def _pose_goal(self, data: mujoco.MjData, goal: np.ndarray) -> None:
        """Put the scene in ``data`` (a copy of the current one) into a configuration showing ``goal``."""
        raise NotImplementedError

    def _frame(self, markers: bool = False) -> np.ndarray:
        return self._frames.render(self.data, markers=markers)

    def _frame_of_state(self, state: np.ndarray) -> np.ndarray:
        self._write_state(self._scratch, state)
        return self._frames.render(self._scratch)

    def _frame_of_goal(self, goal: np.ndarray) -> np.ndarray:
        mujoco.mj_resetData(self.model, self._scratch)
        self._scratch.qpos[:] = self.data.qpos
        self._pose_goal(self._scratch, goal)
        mujoco.mj_forward(self.model, self._scratch)
        return self._frames.render(self._scratch)

    @property
    def state_size(self) -> int:
        return mujoco.mj_stateSize(self.model, _STATE_SPEC)

    def get_state(self) -> np.ndarray:
        """The benchmark's MuJoCo integration state (float64); ``set_state`` restores it exactly."""
        state = np.empty(self.state_size)
        mujoco.mj_getState(self.model, self.data, state, _STATE_SPEC)
        return state

    def set_state(self, state: np.ndarray) -> None:
        self._write_state(self.data, state)

    def qpos_of(self, state: np.ndarray) -> np.ndarray:
        return self._check_state(state)[1 : 1 + self.model.nq]

    def qvel_of(self, state: np.ndarray) -> np.ndarray:
        return self._check_state(state)[1 + self.model.nq : 1 + self.model.nq + self.model.nv]

    def advance(self, action: np.ndarray) -> None:
        """One env step without rendering. After ``mj_step`` positions (xpos) lag qpos by one
        sub-step: they are recomputed (state-neutral), so a frame shows exactly the state
        ``get_state()`` returns and a controller that reads positions (OGBench's IK) sees the
        current ones."""
        self._advance(action)
        mujoco.mj_forward(self.model, self.data)

    def coverage_coords(self, states: np.ndarray) -> np.ndarray:
        return np.stack([self.qpos_of(s)[:2] for s in np.asarray(states)])

    def close(self) -> None:
        self._frames.close()

    def _write_state(self, data: mujoco.MjData, state: np.ndarray) -> None:
        mujoco.mj_setState(self.model, data, self._check_state(state), _STATE_SPEC)
        mujoco.mj_forward(self.model, data)
