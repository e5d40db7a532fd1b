"""Recorded trajectories in the LeRobot dataset format (v3.0 written, v3.0 and v2.1 read).

- ``LeRobotWriter``: write episodes (pyarrow + PyAV), interruption-safe, appendable.
- ``LeRobotDataset``: read metadata, episodes, frames by index, delta-index queries.
- ``ClipDataset`` / ``ClipSpec``: a torch ``Dataset`` of context + future clips with actions.
- ``FrameCache``: decode once into a uint8 memory map for small-resolution training.
"""

from worldmodel.datasets.cache import FrameCache
from worldmodel.datasets.clips import ClipDataset, ClipSpec
from worldmodel.datasets.format import DatasetError
from worldmodel.datasets.reader import LeRobotDataset
from worldmodel.datasets.writer import LeRobotWriter

__all__ = ["ClipDataset", "ClipSpec", "DatasetError", "FrameCache", "LeRobotDataset", "LeRobotWriter"]
