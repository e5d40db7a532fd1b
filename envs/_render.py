"""Fast headless frames of a MuJoCo scene: the offscreen buffer sized to the frame, no shadows or
reflections, target markers (geom group ``MARKER_GROUP``) hidden or shown, GL contexts closed at
exit before MuJoCo's EGL display is torn down."""

from __future__ import annotations

import atexit
import os
import weakref

import mujoco
import numpy as np

MARKER_GROUP = 3
_LIVE: weakref.WeakSet = weakref.WeakSet()


def _close_live() -> None:
    for renderer in list(_LIVE):
        renderer.close()


def size_buffer(model: mujoco.MjModel, h: int, w: int, msaa_samples: int = 4) -> None:
    """Size a model's offscreen buffer to the frame and turn shadows off (~20x faster software
    rendering)."""
    model.vis.global_.offwidth = max(w, 1)
    model.vis.global_.offheight = max(h, 1)
    model.vis.quality.shadowsize = 0
    model.vis.quality.offsamples = msaa_samples


class FrameRenderer:
    """Renders ``(H, W, 3)`` uint8 frames of ``model`` from one camera (an id, -1 for the free
    camera, or an ``MjvCamera`` placed by the task)."""

    def __init__(self, model: mujoco.MjModel, hw: tuple[int, int], camera: int | mujoco.MjvCamera):
        self.model, self.hw, self.camera = model, hw, camera
        self._renderer: mujoco.Renderer | None = None
        self.hidden = mujoco.MjvOption()  # observations and goal images: no markers
        self.hidden.geomgroup[MARKER_GROUP] = 0
        self.hidden.sitegroup[MARKER_GROUP] = 0
        self.shown = mujoco.MjvOption()  # frames for people: markers drawn
        self.shown.geomgroup[MARKER_GROUP] = 1
        self.shown.sitegroup[MARKER_GROUP] = 1

    def render(self, data: mujoco.MjData, markers: bool = False) -> np.ndarray:
        """A fresh frame of ``data`` (markers hidden unless ``markers``)."""
        if self._renderer is None:
            h, w = self.hw
            try:
                self._renderer = mujoco.Renderer(self.model, h, w)
            except Exception as e:  # mujoco raises FatalError without naming the cause
                raise RuntimeError(
                    f"could not create a MuJoCo renderer (MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}): {e}. "
                    "Headless machines need MUJOCO_GL=egl (or osmesa) set before mujoco is first "
                    "imported: export it, or import envs before mujoco."
                ) from e
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
            # atexit runs last-in first-out: registering after MuJoCo's EGL teardown (made with the
            # first renderer) closes our contexts before the display goes.
            if not _LIVE:
                atexit.register(_close_live)
            _LIVE.add(self._renderer)
        self._renderer.update_scene(
            data, camera=self.camera, scene_option=self.shown if markers else self.hidden
        )
        return self._renderer.render()  # a fresh array every call

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def camera_id(model: mujoco.MjModel, camera: str | int) -> int:
    """A camera id from a name or an id (-1: the free camera); unknown ones raise, naming those there are."""
    if isinstance(camera, str):
        cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if cam_id < 0:
            names = [model.camera(i).name for i in range(model.ncam)]
            raise ValueError(f"unknown camera {camera!r}; this task has {names}")
        return cam_id
    if not -1 <= int(camera) < model.ncam:
        raise ValueError(f"camera id {camera} out of range [-1, {model.ncam})")
    return int(camera)


def camera_name(model: mujoco.MjModel, camera: int) -> str:
    return (model.camera(camera).name or f"camera{camera}") if camera >= 0 else "free"
