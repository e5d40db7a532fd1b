"""Recorded trajectories in the LeRobot dataset format (v3.0 written, v3.0 and v2.1 read).

- ``LeRobotWriter``: write episodes (pyarrow + PyAV), interruption-safe, appendable.
- ``LeRobotDataset``: read metadata, episodes, frames by index, delta-index queries.
- ``ClipDataset`` / ``ClipSpec``: a torch ``Dataset`` of context + future clips with actions.
- ``FrameCache``: decode once into a uint8 memory map for small-resolution training.

Also here: ``video`` (writing and decoding mp4: PyAV, decord with a PyAV fallback), ``features``
(a frozen encoder's features of a dataset, stored once for predictor training), ``splits``
(held-out episodes), ``stats`` (per-feature statistics).
"""

from worldmodel.data.cache import FrameCache
from worldmodel.data.clips import ClipDataset, ClipSpec
from worldmodel.data.format import DatasetError
from worldmodel.data.reader import LeRobotDataset
from worldmodel.data.writer import LeRobotWriter

__all__ = ["ClipDataset", "ClipSpec", "DatasetError", "FrameCache", "LeRobotDataset", "LeRobotWriter"]
