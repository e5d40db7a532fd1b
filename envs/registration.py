"""Gymnasium registration of our tasks under the ``wm`` namespace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym

#: task ids, easy to hard, with their entry points and default keyword arguments
TASKS: dict[str, tuple[str, dict[str, Any]]] = {
    "wm/PointMass-v0": ("envs.point_mass:PointMassEnv", {}),
    "wm/Reacher-v0": ("envs.reacher:ReacherEnv", {}),
    "wm/UMaze-v0": ("envs.umaze:UMazeEnv", {}),
    "wm/PushT-v0": ("envs.push:PushEnv", {"block": "t"}),
    "wm/PushBox-v0": ("envs.push:PushEnv", {"block": "box"}),
    "wm/PushTState-v0": ("envs.push:PushWithBlockStateEnv", {"block": "t"}),
}

#: the peers' benchmarks behind our planning-task API (``pip install '.[benchmarks]'``); their
#: packages are imported only when one is made
BENCHMARKS: dict[str, tuple[str, dict[str, Any]]] = {
    "wm/dmc-reacher-easy-v0": ("envs.adapters.dmc:DMCReacher", {"level": "easy"}),
    "wm/dmc-reacher-hard-v0": ("envs.adapters.dmc:DMCReacher", {"level": "hard"}),
    "wm/dmc-reacher-pose-v0": ("envs.adapters.dmc:DMCReacherPose", {"level": "easy"}),
    "wm/dmc-point-mass-easy-v0": ("envs.adapters.dmc:DMCPointMass", {"level": "easy"}),
    "wm/pointmaze-umaze-v0": ("envs.adapters.pointmaze:PointMazeTask", {"maze": "PointMaze_UMaze-v3"}),
    "wm/ogbench-cube-single-v0": ("envs.adapters.ogbench_cube:OGBenchCube", {"env_id": "cube-single-v0"}),
    "wm/gym-pusht-v0": ("envs.adapters.pusht:GymPushT", {}),
}

#: short names accepted wherever a task id is
ALIASES = {
    "pointmass": "wm/PointMass-v0",
    "reacher": "wm/Reacher-v0",
    "umaze": "wm/UMaze-v0",
    "pusht": "wm/PushT-v0",
    "pushbox": "wm/PushBox-v0",
    "pushtstate": "wm/PushTState-v0",
    "dmcreachereasy": "wm/dmc-reacher-easy-v0",
    "dmcreacherhard": "wm/dmc-reacher-hard-v0",
    "dmcreacherpose": "wm/dmc-reacher-pose-v0",
    "dmcpointmass": "wm/dmc-point-mass-easy-v0",
    "pointmaze": "wm/pointmaze-umaze-v0",
    "ogbenchcube": "wm/ogbench-cube-single-v0",
    "cube": "wm/ogbench-cube-single-v0",
    "gympusht": "wm/gym-pusht-v0",
}

MAX_EPISODE_STEPS = 200


def register_envs() -> None:
    """Register every task and benchmark adapter with gymnasium (idempotent; imports nothing)."""
    for env_id, (entry_point, kwargs) in {**TASKS, **BENCHMARKS}.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id, entry_point=entry_point, kwargs=kwargs, max_episode_steps=MAX_EPISODE_STEPS
            )


def resolve_task(name: str) -> str:
    """A task id from an id, a short name (``pointmass``, ``reacher``, ``pointmaze``, ...) or any
    id registered with gymnasium (wrapped by :func:`make_task`)."""
    if name in TASKS or name in BENCHMARKS:
        return name
    key = name.lower().replace("-", "").replace("_", "")
    if key in ALIASES:
        return ALIASES[key]
    if name in gym.registry:
        return name
    raise ValueError(f"unknown task {name!r}: not one of ours {sorted(ALIASES)}, nor an id registered with "
                     "gymnasium (import the package that registers it first)")  # fmt: skip


def is_pushing(task_id: str) -> bool:
    """Whether a task id is one of our pushing tasks (those the push and demo policies drive)."""
    return task_id in TASKS and "Push" in task_id


def _task_class(task_id: str) -> type:
    import importlib

    module, cls = {**TASKS, **BENCHMARKS}[task_id][0].split(":")
    return getattr(importlib.import_module(module), cls)


def task_angle_dims(task_id: str | None) -> tuple[int, ...]:
    """The proprio state's angle dims of a task or adapter (``()`` for another gymnasium id)."""
    return tuple(_task_class(task_id).angle_dims) if task_id in TASKS or task_id in BENCHMARKS else ()


def task_state_names(task_id: str) -> tuple[str, ...]:
    """The names of a task's ``state`` observation dims (``()`` for another gymnasium id, whose
    names come from its env)."""
    task_id = resolve_task(task_id)
    return tuple(_task_class(task_id).state_names) if task_id in TASKS or task_id in BENCHMARKS else ()


def make_task(name: str, image_size: int = 64, camera: str | Sequence[str] | None = None) -> gym.Env:
    """The bare env (no gymnasium wrappers) for a task id: ours and the benchmark adapters are built
    directly; any other gymnasium id renders ``rgb_array`` frames behind :class:`PixelsAndState`
    (pixels + its observation flattened as the state; rendered at the frame size where the env
    takes ``width``/``height``, as gymnasium's MuJoCo envs do)."""
    task_id = resolve_task(name)
    if not isinstance(camera, str) and camera is not None:
        camera = tuple(camera)
        if len(camera) == 1:
            camera = camera[0]
        elif task_id not in TASKS:
            raise ValueError(f"{task_id} renders one camera; several cameras ({list(camera)}) are for our tasks "
                             f"({', '.join(TASKS)})")  # fmt: skip
    if task_id in TASKS or task_id in BENCHMARKS:
        return gym.make(task_id, image_size=image_size, camera=camera).unwrapped
    from envs.wrappers import PixelsAndState

    if camera is not None:
        raise ValueError(f"--camera names a camera of our tasks and adapters; {task_id} renders through its "
                         "own render() (pass its camera arguments to gymnasium.make in Python)")  # fmt: skip
    try:
        inner = gym.make(task_id, render_mode="rgb_array", width=image_size, height=image_size)
    except TypeError:  # an env that does not take a frame size: frames are resized
        inner = gym.make(task_id, render_mode="rgb_array")
    return PixelsAndState(inner.unwrapped, image_size)


def make(name: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` accepting short names: ``envs.make("reacher", image_size=96)``."""
    return gym.make(resolve_task(name), **kwargs)
