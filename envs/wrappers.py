"""Use any gymnasium env with ``rgb_array`` rendering like one of our tasks.

``PixelsAndState`` turns the wrapped env's observation into ``{"pixels": (H, W, 3) uint8,
"state": (P,) float32}``: pixels from ``render()`` (resized if the env renders at another size),
state = the env's own observation flattened. For MuJoCo-based envs (gymnasium's ``MujocoEnv``)
it also offers ``get_state()`` / ``set_state()`` over the full integration state, so planners and
oracles can branch. Goals for such envs come from recorded frames (dataset goal mode).

Example::

    env = PixelsAndState(gym.make("Reacher-v5", render_mode="rgb_array", width=64, height=64))

(Passing ``width``/``height`` to a MuJoCo env makes it render at the frame size: much faster than
rendering at 480x480 and resizing.)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from PIL import Image


def _mujoco_spec():
    import mujoco

    return mujoco, mujoco.mjtState.mjSTATE_INTEGRATION


class PixelsAndState(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Observation ``{"pixels", "state"}`` for any env rendering ``rgb_array`` frames."""

    def __init__(self, env: gym.Env, image_size: int | tuple[int, int] = 64):
        gym.utils.RecordConstructorArgs.__init__(self, image_size=image_size)
        gym.ObservationWrapper.__init__(self, env)
        if env.render_mode != "rgb_array":
            raise ValueError(
                f"PixelsAndState needs an env made with render_mode='rgb_array', got {env.render_mode!r}"
            )
        h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        self.image_hw = (int(h), int(w))
        self._inner_space = env.observation_space
        flat = spaces.flatten_space(env.observation_space)
        self.observation_space = spaces.Dict(
            {
                "pixels": spaces.Box(0, 255, shape=(h, w, 3), dtype=np.uint8),
                "state": spaces.Box(-np.inf, np.inf, shape=flat.shape, dtype=np.float32),
            }
        )
        #: names of the state entries (the flattened observation's positions)
        self.state_names = tuple(f"obs{i}" for i in range(flat.shape[0]))
        #: the camera name recorded in a dataset's image key
        self.camera_name = "rgb"
        self.camera_names = (self.camera_name,)  # the one view ``pixels`` holds

    def observation(self, observation: Any) -> dict[str, np.ndarray]:
        frame = self.env.render()
        if frame is None or frame.ndim != 3 or frame.shape[2] < 3:
            raise RuntimeError(
                f"render() returned {None if frame is None else frame.shape}, expected (H, W, 3)"
            )
        frame = np.ascontiguousarray(frame[..., :3], dtype=np.uint8)
        if frame.shape[:2] != self.image_hw:
            h, w = self.image_hw
            frame = np.asarray(Image.fromarray(frame).resize((w, h), Image.BILINEAR, reducing_gap=2.0))
        state = spaces.flatten(self._inner_space, observation).astype(np.float32)
        return {"pixels": frame.copy(), "state": state}

    # -- branching for MuJoCo envs --------------------------------------------------------

    def _mj(self):
        base = self.env.unwrapped
        if not (hasattr(base, "model") and hasattr(base, "data")):
            raise NotImplementedError(
                f"{type(base).__name__} is not a MuJoCo env (no .model/.data): get_state/set_state "
                "are available only for MuJoCo-based envs"
            )
        return base.model, base.data

    @property
    def state_size(self) -> int:
        mujoco, spec = _mujoco_spec()
        return mujoco.mj_stateSize(self._mj()[0], spec)

    def get_state(self) -> np.ndarray:
        """Full MuJoCo integration state of the wrapped env (float64 vector)."""
        mujoco, spec = _mujoco_spec()
        model, data = self._mj()
        state = np.empty(mujoco.mj_stateSize(model, spec))
        mujoco.mj_getState(model, data, state, spec)
        return state

    def set_state(self, state: np.ndarray) -> None:
        """Restore a state from ``get_state()`` exactly."""
        mujoco, spec = _mujoco_spec()
        model, data = self._mj()
        state = np.asarray(state, dtype=np.float64)
        size = mujoco.mj_stateSize(model, spec)
        if state.shape != (size,):
            raise ValueError(f"state must have shape ({size},) as returned by get_state(), got {state.shape}")
        mujoco.mj_setState(model, data, state, spec)
        mujoco.mj_forward(model, data)
