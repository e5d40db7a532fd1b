"""Shared test settings: headless rendering and single-threaded torch."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
