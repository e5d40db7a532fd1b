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


STANDOFF = 0.04  # the demonstrator's approach point: this far behind where the pusher touches the block


@dataclass(frozen=True)
class PushDemoConfig:
    target_distance: tuple[float, float] = (0.1, 0.45)  # block displacement to each target, drawn uniformly
    target_turn: float = np.pi / 2  # largest rotation to a target (radians, either way)
    patience: int = 100  # env steps without reaching a target before another is drawn (a failure)
    noise: tuple[float, float] = (0.0, 0.4)  # per-episode weight of smooth random noise, drawn uniformly
    free_share: float = 0.15  # share of targets replaced by a stretch of free random motion
    free_steps: tuple[int, int] = (5, 20)  # length of such a stretch, drawn uniformly
    push_speed: float = 0.8  # pushing speed (fraction of the pusher's top speed)
    turn_arm: float = 0.72  # largest lateral offset of the contact from the centre of mass (turns the block), a share of the block's reach
    turn_gain: float = 0.2  # lateral offset per radian of angle error while translating
    gain: float = 6.0  # proportional gain from position error to velocity command
    stroke_steps: int = 30  # longest push before the contact is planned again (env steps)
    stroke_turn: float = 0.4  # a push stops when the wanted push direction has turned this far (radians)

    def __post_init__(self):
        lo, hi = self.target_distance
        if not 0.0 < lo <= hi:
            raise ValueError(f"target_distance must satisfy 0 < low <= high, got {self.target_distance}")
        if not 0.0 <= self.free_share < 1.0:
            raise ValueError(f"free_share must be in [0, 1), got {self.free_share}")
        if not 0.0 < self.push_speed <= 1.0:
            raise ValueError(f"push_speed must be in (0, 1], got {self.push_speed}")


class PushDemoPolicy:
    """Pushing demonstrations: push the block to sampled target poses on purpose.

    Reads the simulator state (this is data collection, not planning). Each target is a block
    pose ``target_distance`` away and up to ``target_turn`` turned, inside the goal bounds. The
    pusher plans its contact from the block's outline: far from the target position it pushes
    through the centre of mass along the position error, the contact shifted sideways in
    proportion to the angle error so the push also turns the block; near it, it pushes across the
    block's axis at the end of a lever to turn it in place. It reaches the contact's stand-off point
    around the block (a detour when the straight path crosses it) and pushes, re-planning the
    contact every step. A target reached (the task's success test) or given up after ``patience``
    steps draws the next one; a share of targets is replaced by free random motion, and every
    action carries smooth noise of a per-episode weight, so the data holds failures, free motion
    and clean pushes. ``targets`` and ``reached`` count the episode's targets.
    """

    def __init__(self, env, rng: np.random.Generator, cfg: PushDemoConfig | None = None):
        self.env = env.unwrapped
        self.rng = rng
        self.cfg = cfg or PushDemoConfig()
        self.noise = SmoothRandomPolicy(2, rng, SmoothRandomConfig(repeat=1, correlation=0.7, scale=1.0))
        self.free = SmoothRandomPolicy(2, rng)
        corners = np.abs(self.env.boxes[:, :2]) + self.env.boxes[:, 2:]  # (boxes, 2): farthest corners
        self._reach = float(np.linalg.norm(corners, axis=-1).max())  # the block's outline from its centre
        self._arm = self.cfg.turn_arm * self._reach
        self.reset()

    def reset(self) -> None:
        self.noise.reset()
        self.weight = self.rng.uniform(*self.cfg.noise)
        self.targets = self.reached = 0
        self._turn_side = 1.0
        self._stroke = None  # (direction, steps left, angle error at its start) while pushing
        self._next_target()

    def _block(self) -> np.ndarray:
        q = self.env.data.qpos
        return np.array([q[2], q[3], q[4]])

    def _next_target(self) -> None:
        """Draw the next target pose, or a stretch of free motion."""
        from envs.push import BLOCK_LIMIT

        c = self.cfg
        self._age = 0
        if self.rng.uniform() < c.free_share:
            self.target, self._free_left = None, int(self.rng.integers(c.free_steps[0], c.free_steps[1] + 1))
            self.free.reset()
            return
        block = self._block()
        heading = self.rng.uniform(-np.pi, np.pi)
        xy = block[:2] + self.rng.uniform(*c.target_distance) * np.array([np.cos(heading), np.sin(heading)])
        turn = self.rng.uniform(-c.target_turn, c.target_turn)
        self.target = np.array([*np.clip(xy, -BLOCK_LIMIT, BLOCK_LIMIT), block[2] + turn])
        self._turn_side = self.rng.choice([-1.0, 1.0])
        self.targets += 1

    def _errors(self, block: np.ndarray) -> tuple[np.ndarray, float]:
        """(position error (2,), angle error modulo the block's symmetry) toward the target."""
        period = self.env.period
        turn = (self.target[2] - block[2] + period / 2) % period - period / 2
        return self.target[:2] - block[:2], float(turn)

    def _contact(self, block: np.ndarray, direction: np.ndarray, offset: float) -> np.ndarray | None:
        """Where the pusher's centre touches the block when it moves along ``direction`` on the line
        ``offset`` to the left of the block's centre of mass (world coordinates); None when the line
        misses the block."""
        from envs.push import PUSHER_RADIUS

        side = np.array([-direction[1], direction[0]])
        t = np.linspace(-0.8, 0.8, 321)
        line = block[:2] + offset * side + t[:, None] * direction  # (321, 2)
        touching = np.flatnonzero(self.env.block_sdf(line, block) <= PUSHER_RADIUS)
        return None if touching.size == 0 else line[touching[0]]

    def _push(self, block: np.ndarray) -> tuple[np.ndarray, float]:
        """(push direction (2,), lateral offset of the contact) toward the current target."""
        from envs.push import ROT_RADIUS

        c = self.cfg
        dpos, turn = self._errors(block)
        dist = float(np.linalg.norm(dpos))
        if dist > ROT_RADIUS * abs(turn):  # mostly a translation: push along it, turning on the way
            return dpos / dist, -float(np.clip(c.turn_gain * turn, -self._arm, self._arm))
        # mostly a rotation: push across the block's axis at the end of a lever, from the side that
        # also closes the position error
        yaw = block[2]
        across = np.array([-np.sin(yaw), np.cos(yaw)])
        if dist > 0.02:
            self._turn_side = 1.0 if np.dot(dpos, across) >= 0 else -1.0
        return self._turn_side * across, -float(np.sign(turn)) * self._arm

    def _feasible(self, block: np.ndarray, direction: np.ndarray, offset: float):
        """(push direction, contact point) nearest the wanted push whose stand-off point the pusher
        can reach (inside the walls): the push turned up to 1 rad either way, then through the centre;
        None when there is none."""
        from envs.push import HALF, PUSHER_RADIUS

        for turn, off in ((0.0, offset), (0.5, offset), (-0.5, offset), (1.0, offset), (-1.0, offset),
                          (0.0, 0.0), (0.5, 0.0), (-0.5, 0.0)):  # fmt: skip
            c, s = np.cos(turn), np.sin(turn)
            d = np.array([c * direction[0] - s * direction[1], s * direction[0] + c * direction[1]])
            contact = self._contact(block, d, off)
            if contact is not None and np.all(np.abs(contact - d * STANDOFF) < HALF - PUSHER_RADIUS):
                return d, contact
        return None

    def _waypoint(self, pusher: np.ndarray, block: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Where to head for ``goal``: straight, or around the block when the straight path hits it."""
        from envs.push import HALF, PUSHER_RADIUS

        path = pusher + np.linspace(0.0, 1.0, 12)[:, None] * (goal - pusher)
        if self.env.block_sdf(path, block).min() > PUSHER_RADIUS - 0.005:
            return goal
        rel_p, rel_g = pusher - block[:2], goal - block[:2]
        bearing = np.arctan2(rel_p[1], rel_p[0])
        gap = (np.arctan2(rel_g[1], rel_g[0]) - bearing + np.pi) % (2 * np.pi) - np.pi
        radius = self._reach + PUSHER_RADIUS + 0.06
        step = bearing + np.sign(gap) * min(abs(gap), 0.8)
        around = block[:2] + radius * np.array([np.cos(step), np.sin(step)])
        return np.clip(around, -HALF + PUSHER_RADIUS, HALF - PUSHER_RADIUS)

    def __call__(self, obs=None) -> np.ndarray:
        from envs.push import SPEED

        c = self.cfg
        pusher, block = self.env.data.qpos[:2].copy(), self._block()
        if self.target is None:  # free motion
            self._free_left -= 1
            action = self.free()
            if self._free_left <= 0:
                self._next_target()
            return action
        goal = np.concatenate([self.target, pusher])
        if self.env.is_success(goal=goal):
            self.reached += 1
            self._next_target()
            return self(obs)
        self._age += 1
        if self._age > c.patience:
            self._next_target()
            return self(obs)
        if self._stroke is not None and self._stroke_continues(pusher, block):
            velocity = c.push_speed * SPEED * self._stroke[0]
        else:
            self._stroke = None
            plan = self._feasible(block, *self._push(block))
            if plan is None:  # no stand-off point inside the arena (the block against a wall): give up
                self._next_target()
                return self(obs)
            direction, contact = plan
            standoff = contact - direction * STANDOFF
            if np.linalg.norm(standoff - pusher) < 0.03:  # at the stand-off point: start a stroke
                self._stroke = (direction, self.cfg.stroke_steps, self._errors(block)[1])
                velocity = c.push_speed * SPEED * direction
            else:
                velocity = c.gain * (self._waypoint(pusher, block, standoff) - pusher)
        action = velocity / SPEED + self.weight * self.noise()
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def _stroke_continues(self, pusher: np.ndarray, block: np.ndarray) -> bool:
        """Whether the stroke under way goes on: steps left, the wanted push still along it (within
        ``stroke_turn``), no overshoot, the pusher still at the block."""
        from envs.push import ANGLE_TOL, PUSHER_RADIUS

        direction, left, turn0 = self._stroke
        self._stroke = (direction, left - 1, turn0)
        dpos, turn = self._errors(block)
        wanted = self._push(block)[0]
        overshot = np.dot(dpos, direction) <= 0.0 and (
            np.sign(turn) != np.sign(turn0) or abs(turn) < ANGLE_TOL / 2
        )
        slipped = self.env.block_sdf(pusher[None], block)[0] > PUSHER_RADIUS + STANDOFF + 0.03
        aligned = float(np.dot(wanted, direction)) > np.cos(self.cfg.stroke_turn)
        return left > 0 and aligned and not overshot and not slipped
