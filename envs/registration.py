"""Gymnasium registration of our tasks under the ``wm`` namespace."""

from __future__ import annotations

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

#: short names accepted wherever a task id is
ALIASES = {
    "pointmass": "wm/PointMass-v0",
    "reacher": "wm/Reacher-v0",
    "umaze": "wm/UMaze-v0",
    "pusht": "wm/PushT-v0",
    "pushbox": "wm/PushBox-v0",
    "pushtstate": "wm/PushTState-v0",
}

MAX_EPISODE_STEPS = 200


def register_envs() -> None:
    """Register every task with gymnasium (idempotent)."""
    for env_id, (entry_point, kwargs) in TASKS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id, entry_point=entry_point, kwargs=kwargs, max_episode_steps=MAX_EPISODE_STEPS
            )


def resolve_task(name: str) -> str:
    """A task id from an id or a short name (``pointmass``, ``reacher``, ``umaze``, ``pusht``)."""
    if name in TASKS:
        return name
    key = name.lower().replace("-", "").replace("_", "")
    if key in ALIASES:
        return ALIASES[key]
    raise ValueError(f"unknown task {name!r}; choose one of {sorted(ALIASES)} or {list(TASKS)}")


def _task_class(task_id: str) -> type:
    import importlib

    module, cls = TASKS[task_id][0].split(":")
    return getattr(importlib.import_module(module), cls)


def task_angle_dims(task_id: str | None) -> tuple[int, ...]:
    """The proprio state's angle dims of one of our tasks (``()`` for an id that is not ours)."""
    return tuple(_task_class(task_id).angle_dims) if task_id in TASKS else ()


def task_state_names(task_id: str) -> tuple[str, ...]:
    """The names of a task's ``state`` observation dims."""
    return tuple(_task_class(resolve_task(task_id)).state_names)


def make(name: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` accepting short names: ``envs.make("reacher", image_size=96)``."""
    return gym.make(resolve_task(name), **kwargs)
