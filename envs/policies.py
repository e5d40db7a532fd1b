"""Exploration policies for data collection and baselines.

``SmoothRandomPolicy``: temporally correlated random actions (an AR(1) process on Gaussian
noise, each action held for ``repeat`` steps), so the agent travels instead of jittering in
place the way i.i.d. uniform actions make it do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SmoothRandomConfig:
    repeat: int = 2  # env steps each sampled action is held
    correlation: float = 0.8  # AR(1) coefficient between consecutive samples, in [0, 1)
    scale: float = 0.8  # std of the stationary action distribution (before clipping to [-1, 1])

    def __post_init__(self):
        if self.repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {self.repeat}")
        if not 0.0 <= self.correlation < 1.0:
            raise ValueError(f"correlation must be in [0, 1), got {self.correlation}")
        if self.scale <= 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")


class SmoothRandomPolicy:
    """Correlated random actions in [-1, 1]^A; all randomness from the given generator."""

    def __init__(self, action_dim: int, rng: np.random.Generator, cfg: SmoothRandomConfig | None = None):
        self.action_dim = action_dim
        self.rng = rng
        self.cfg = cfg or SmoothRandomConfig()
        self.reset()

    def reset(self) -> None:
        self._noise = self.rng.normal(0.0, self.cfg.scale, self.action_dim)
        self._t = 0

    def __call__(self, obs=None) -> np.ndarray:
        c = self.cfg
        if self._t > 0 and self._t % c.repeat == 0:
            innovation = self.rng.normal(0.0, c.scale, self.action_dim)
            self._noise = c.correlation * self._noise + np.sqrt(1.0 - c.correlation**2) * innovation
        self._t += 1
        return np.clip(self._noise, -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class PushScriptedConfig:
    push_steps: tuple[int, int] = (4, 16)  # env steps of each push, drawn uniformly
    gain: float = 6.0  # proportional gain from position error to velocity command
    noise: float = 0.3  # weight of smooth random noise added to every action
    standoff: float = 0.05  # distance kept from the block's side before pushing


class PushScriptedPolicy:
    """Pushing exploration: approach a random side of the block, push through it, repeat.

    Reads the simulator state (this is data collection, not planning): picks a random point on
    a random side of one of the block's boxes, moves the pusher to a stand-off point outside it
    (detouring around the block when the straight path crosses it), then pushes along the
    inward normal for a random number of steps. Smooth random noise is added throughout, so the
    data covers misses, glancing contacts and free motion as well as pushes.
    """

    def __init__(self, env, rng: np.random.Generator, cfg: PushScriptedConfig | None = None):
        self.env = env.unwrapped
        self.rng = rng
        self.cfg = cfg or PushScriptedConfig()
        self.noise = SmoothRandomPolicy(2, rng, SmoothRandomConfig(repeat=1, correlation=0.7, scale=1.0))
        self.reset()

    def reset(self) -> None:
        self.noise.reset()
        self._phase, self._left = "approach", 0
        self._side = self._pick_side()

    def _pick_side(self) -> tuple[np.ndarray, np.ndarray]:
        """(point on a box side, outward normal), both in the block frame."""
        cx, cy, hx, hy = self.env.boxes[self.rng.integers(len(self.env.boxes))]
        axis, sign = self.rng.integers(2), self.rng.choice([-1.0, 1.0])
        normal = np.zeros(2)
        normal[axis] = sign
        half = np.array([hx, hy])
        along = self.rng.uniform(-0.8, 0.8) * half[1 - axis]
        point = np.array([cx, cy]) + normal * half
        point[1 - axis] += along
        return point, normal

    def start_pushing(self, steps: int) -> None:
        """Place the pusher at the stand-off point of the chosen side and push for ``steps``
        steps from now on (makes easy, feasible pushing goals for tests and demos)."""
        from envs.push import PUSHER_RADIUS

        state = self.env.get_state()
        q = self.env.qpos_of(state)
        bx, by, yaw = q[2:5]
        rot = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
        point, normal = self._side
        q[:2] = np.array([bx, by]) + rot @ (point + normal * (PUSHER_RADIUS + self.cfg.standoff))
        self.env.qvel_of(state)[:] = 0.0
        self.env.set_state(state)
        self._phase, self._left = "push", steps

    def __call__(self, obs=None) -> np.ndarray:
        from envs.push import PUSHER_RADIUS, SPEED

        q = self.env.data.qpos
        pusher, (bx, by, yaw) = q[:2].copy(), q[2:5]
        rot = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
        point, normal = self._side
        contact, n_world = np.array([bx, by]) + rot @ point, rot @ normal
        if self._phase == "approach":
            standoff = contact + n_world * (PUSHER_RADIUS + self.cfg.standoff)
            if np.dot(pusher - contact, n_world) < 0:  # far side of the block: go around it first
                velocity = self.cfg.gain * (np.array([bx, by]) + n_world * 0.45 - pusher)
            else:
                velocity = self.cfg.gain * (standoff - pusher)
                if np.linalg.norm(standoff - pusher) < 0.04:
                    self._phase, self._left = "push", int(self.rng.integers(*self.cfg.push_steps))
        else:
            velocity = -n_world * SPEED * self.rng.uniform(0.5, 1.0)
            self._left -= 1
            if self._left <= 0:
                self._phase, self._side = "approach", self._pick_side()
        action = velocity / SPEED + self.cfg.noise * self.noise()
        return np.clip(action, -1.0, 1.0).astype(np.float32)
