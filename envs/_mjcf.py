"""MJCF building blocks shared by our tasks (visual settings, floor, arena walls)."""

from __future__ import annotations


def header(model: str, timestep: float = 0.01) -> str:
    """Opening of a model: options and visual settings tuned for small offscreen frames."""
    return f"""<mujoco model="{model}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep}" integrator="implicitfast" gravity="0 0 -9.81"/>
  <visual>
    <headlight ambient=".5 .5 .5" diffuse=".5 .5 .5" specular="0 0 0"/>
    <quality shadowsize="0"/>
    <map znear=".01" zfar="50"/>
  </visual>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1=".82 .82 .80" rgb2=".76 .76 .74"
             width="64" height="64"/>
    <material name="floor" texture="grid" texrepeat="4 4" reflectance="0"/>
    <material name="wall" rgba=".3 .3 .34 1" reflectance="0"/>
  </asset>
"""


def floor_and_walls(half: float, wall: float = 0.05, height: float = 0.06) -> str:
    """A floor that collides with nothing and four walls enclosing [-half, half]^2."""
    o = half + wall
    return f"""
    <geom name="floor" type="plane" size="{o + 0.1} {o + 0.1} .1" material="floor"
          contype="0" conaffinity="0"/>
    <geom name="wall_px" type="box" pos="{o} 0 {height}" size="{wall} {o + wall} {height}" material="wall"/>
    <geom name="wall_nx" type="box" pos="{-o} 0 {height}" size="{wall} {o + wall} {height}" material="wall"/>
    <geom name="wall_py" type="box" pos="0 {o} {height}" size="{o + wall} {wall} {height}" material="wall"/>
    <geom name="wall_ny" type="box" pos="0 {-o} {height}" size="{o + wall} {wall} {height}" material="wall"/>
"""


def cameras(cx: float, cy: float, half_extent: float, fovy: float = 45.0) -> str:
    """Two fixed cameras on the square [c - half_extent, c + half_extent]^2: ``top`` looks straight
    down and sees all of it; ``side`` looks at its centre from the -y side, 45 degrees above the
    floor, from as far as ``top`` is high (a second view for multi-camera recordings)."""
    import math

    z = half_extent / math.tan(math.radians(fovy) / 2)
    d = z / math.sqrt(2)
    return (
        f'    <camera name="top" pos="{cx} {cy} {z:.4f}" xyaxes="1 0 0 0 1 0" fovy="{fovy}"/>\n'
        f'    <camera name="side" pos="{cx} {cy - d:.4f} {d:.4f}" xyaxes="1 0 0 0 .7071 .7071" fovy="{fovy}"/>\n'
    )


def yaw_quat(theta: float):
    """Unit quaternion (w, x, y, z) of a rotation by ``theta`` about +z."""
    import numpy as np

    return np.array([np.cos(theta / 2), 0.0, 0.0, np.sin(theta / 2)])
