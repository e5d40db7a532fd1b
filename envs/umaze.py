"""Point mass in a U-maze with D4RL maze2d dynamics.

The D4RL ``maze2d-umaze`` layout and dynamics: a ball (collision radius 0.1, density 1000)
on x/y slide joints with damping 1, two motors with gear 100, timestep 0.01, the velocity
clipped to +-5 before each action as D4RL does, and 5 sub-steps per action. Cell (i, j) of the
layout sits at (x, y) = (i, j); walls are unit squares (drawn 0.3 high). The ball is drawn with radius
``VISUAL_RADIUS`` so it stays visible at 64x64.

    #####
    #OOO#      row 1: x = 1
    ###O#      row 2: x = 2
    #OOO#      row 3: x = 3
    #####

| Action | range   | meaning                 |
|--------|---------|-------------------------|
| 0      | [-1, 1] | force along x (x 100 N) |
| 1      | [-1, 1] | force along y (x 100 N) |

| Observation | shape     | meaning                                     |
|-------------|-----------|---------------------------------------------|
| pixels      | (H, W, 3) | top-down RGB, uint8 (64x64 by default)      |
| state       | (4,)      | x, y, vx, vy of the ball (float32)          |

Goal: ``(x, y)``, a free position (at least ``BALL_RADIUS`` from every wall). Success: within
``SUCCESS_RADIUS`` (0.5) of the goal position, as in D4RL. Distance: Euclidean (not geodesic).
"""

from __future__ import annotations

import numpy as np

from envs import _mjcf
from envs._ball import BallTask

LAYOUT = ("#####", "#OOO#", "###O#", "#OOO#", "#####")
BALL_RADIUS = 0.1
VISUAL_RADIUS = 0.2
SUCCESS_RADIUS = 0.5
MAX_SPEED = 5.0
WALLS = np.array([(i, j) for i, row in enumerate(LAYOUT) for j, c in enumerate(row) if c == "#"], float)
FREE = np.array([(i, j) for i, row in enumerate(LAYOUT) for j, c in enumerate(row) if c != "#"], float)


def wall_clearance(xy: np.ndarray) -> np.ndarray:
    """Distance from points (..., 2) to the nearest wall cube's footprint (..., )."""
    d = np.abs(np.asarray(xy)[..., None, :] - WALLS) - 0.5  # (..., walls, 2)
    outside = np.linalg.norm(np.maximum(d, 0.0), axis=-1)
    inside = np.minimum(d.max(axis=-1), 0.0)
    return (outside + inside).min(axis=-1)


class UMazeEnv(BallTask):
    success_radius = SUCCESS_RADIUS

    def _mjcf(self) -> str:
        walls = "".join(
            f'    <geom name="wall_{int(i)}_{int(j)}" type="box" pos="{i} {j} .15" size=".5 .5 .15" material="wall"/>\n'
            for i, j in WALLS
        )
        return (
            _mjcf.header("umaze")
            + """  <default>
    <joint damping="1" limited="false"/>
    <geom friction=".5 .1 .1" density="1000" margin="0.002" condim="1" contype="2" conaffinity="1"/>
  </default>
  <worldbody>
    <geom name="floor" type="plane" pos="2 2 0" size="3 3 .1" material="floor" contype="0" conaffinity="0"/>
"""
            + walls
            + _mjcf.cameras(2.0, 2.0, 2.0)
            + f"""    <body name="ball" pos="0 0 {BALL_RADIUS}">
      <joint name="ball_x" type="slide" axis="1 0 0"/>
      <joint name="ball_y" type="slide" axis="0 1 0"/>
      <geom name="ball" type="sphere" size="{BALL_RADIUS}" contype="1" rgba="0 0 0 0"/>
      <geom name="ball_visual" type="sphere" size="{VISUAL_RADIUS}" pos="0 0 .1" mass="0"
            contype="0" conaffinity="0" rgba=".95 .35 .1 1"/>
    </body>
    <body name="target" mocap="true" pos="0 0 .2">
      <geom type="sphere" size="{VISUAL_RADIUS}" rgba=".1 .8 .2 .5" contype="0" conaffinity="0" group="3"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="ball_x" gear="100" ctrlrange="-1 1"/>
    <motor joint="ball_y" gear="100" ctrlrange="-1 1"/>
  </actuator>
</mujoco>
"""
        )

    def _apply_action(self, action: np.ndarray) -> None:
        np.clip(self.data.qvel, -MAX_SPEED, MAX_SPEED, out=self.data.qvel)  # D4RL's clip_velocity
        super()._apply_action(action)

    def sample_goal(self, rng: np.random.Generator | None = None) -> np.ndarray:
        """Uniform over the free space (rejection sampling inside the maze's free cells)."""
        rng = self.np_random if rng is None else rng
        while True:
            xy = FREE[rng.integers(len(FREE))] + rng.uniform(-0.5, 0.5, size=2)
            if wall_clearance(xy) >= BALL_RADIUS:
                return xy

    def goal_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = FREE.min(axis=0) - 0.5 + BALL_RADIUS
        hi = FREE.max(axis=0) + 0.5 - BALL_RADIUS
        return lo, hi

    def coverage_mask(self, bins: int) -> np.ndarray:
        (x0, y0), (x1, y1) = self.coverage_bounds()
        xs = x0 + (np.arange(bins) + 0.5) * (x1 - x0) / bins
        ys = y0 + (np.arange(bins) + 0.5) * (y1 - y0) / bins
        centres = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1)  # (bins, bins, 2)
        return wall_clearance(centres) >= BALL_RADIUS

    def _validate_goal(self, goal: np.ndarray) -> None:
        clearance = float(wall_clearance(goal))
        if clearance < BALL_RADIUS - 1e-9:
            raise ValueError(
                f"goal {goal.tolist()} is inside or too close to a wall (clearance {clearance:.3f} < "
                f"ball radius {BALL_RADIUS}); free cells are {FREE.astype(int).tolist()}"
            )
