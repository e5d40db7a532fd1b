"""Goal-conditioned MuJoCo tasks as gymnasium environments (namespace ``wm``).

Importing this package registers the tasks with gymnasium (cheap: no model is built):

| id                | task                                            | goal (G)                  |
|-------------------|-------------------------------------------------|---------------------------|
| wm/PointMass-v0   | point mass reaching a position, open arena      | x, y                      |
| wm/Reacher-v0     | two-link planar arm matching a whole-arm pose   | shoulder, elbow           |
| wm/UMaze-v0       | point mass in a U-maze (D4RL maze2d dynamics)   | x, y                      |
| wm/PushT-v0       | pusher moving a T block to a position and angle | block x, y, angle, pusher |
| wm/PushBox-v0     | the same with a square block                    | as above                  |
| wm/PushTState-v0  | PushT with the block's pose in the state too    | as above                  |

Observations are ``{"pixels": (H, W, 3) uint8, "state": (P,) float32}``; actions are in [-1, 1].
See each task's module docstring for its action/observation tables and success test.
"""

from __future__ import annotations

import os
import sys

# Headless rendering by default on Linux; must be set before mujoco is first imported.
if sys.platform.startswith("linux") and "MUJOCO_GL" not in os.environ and "DISPLAY" not in os.environ:
    os.environ["MUJOCO_GL"] = "egl"

from envs.registration import TASKS, make, register_envs

register_envs()

__all__ = ["TASKS", "make", "register_envs"]
