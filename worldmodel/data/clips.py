"""Clips for training: context + future frames, the actions and states between them.

A clip around an anchor frame ``t`` of an episode holds ``T = context + future`` frames at
``t + k * j`` for ``j`` in ``[-(context - 1), future]``, where ``k = frameskip`` env steps per
model step (the action block). Between consecutive clip frames lie ``k`` env actions; they are
concatenated into one model action, so a clip has ``T - 1`` actions of size ``k * A``.

Returned per clip (torch tensors; legend: T frames, C,H,W image, P state, A action dim)::

    frames          (T, C, H, W) uint8      frames_is_pad   (T,) bool
    state           (T, P) float32          state_is_pad    (T,) bool
    actions         (T - 1, k * A) float32  actions_is_pad  (T - 1,) bool
    episode_index, frame_index (anchor)     int64 scalars

Pad masks follow LeRobot's delta-timestamps convention: positions outside the episode are
clamped to its border and flagged. With ``allow_pad=False`` (default) only anchors whose whole
clip lies inside the episode are sampled, so nothing is padded. ``state_key=None`` /
``action_key=None`` leave states / actions out (video-only datasets: pretraining needs frames only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from worldmodel.data.cache import FrameCache
from worldmodel.data.format import DatasetError
from worldmodel.data.reader import LeRobotDataset


@dataclass(frozen=True)
class ClipSpec:
    context: int = 1  # frames up to and including the anchor
    future: int = 1  # frames after the anchor
    frameskip: int = 1  # env steps between consecutive clip frames (the action block)
    allow_pad: bool = False  # sample anchors near episode borders, with pad masks

    def __post_init__(self):
        if self.context < 1 or self.future < 0 or self.frameskip < 1:
            raise ValueError(f"need context >= 1, future >= 0, frameskip >= 1; got {self}")

    @property
    def frames(self) -> int:
        return self.context + self.future

    def frame_deltas(self) -> np.ndarray:
        """(T,) frame offsets from the anchor."""
        return self.frameskip * np.arange(-(self.context - 1), self.future + 1)

    def action_deltas(self) -> np.ndarray:
        """((T - 1) * k,) env-step offsets from the anchor of the actions between clip frames."""
        starts = self.frame_deltas()[:-1]
        return (starts[:, None] + np.arange(self.frameskip)).ravel()


class ClipDataset(Dataset):
    """A torch ``Dataset`` of clips from a LeRobot dataset (works with DataLoader workers).

    ``cache``: ``"auto"`` decodes the camera once into a memory-mapped frame cache when frames
    are small (<= 128x128), ``True``/``False`` force it (``progress``: a bar while it decodes). ``image_key`` defaults to the first camera;
    several keys (cameras of one size) give their frames stacked along the channels, (T, 3K, H, W)
    in the order given (what an encoder with ``cameras = K`` takes).
    """

    def __init__(
        self,
        dataset: LeRobotDataset | str | Path,
        spec: ClipSpec | None = None,
        *,
        image_key: str | tuple[str, ...] | list[str] | None = None,
        state_key: str | None = "observation.state",
        action_key: str | None = "action",
        cache: bool | str = "auto",
        cache_dir: str | Path | None = None,
        progress: bool = True,
    ):
        self.ds = dataset if isinstance(dataset, LeRobotDataset) else LeRobotDataset(dataset)
        self.spec = spec or ClipSpec()
        info = self.ds.root / "meta" / "info.json"
        if not self.ds.video_keys:
            raise DatasetError(f"{info}: no video feature to make clips of")
        if self.ds.num_episodes == 0:
            raise DatasetError(f"{info}: the dataset holds no episodes")
        keys = (image_key,) if isinstance(image_key, str) else tuple(image_key or self.ds.video_keys[:1])
        self.image_keys, self.image_key = keys, keys[0]
        for key in (*keys, state_key, action_key):
            if key is not None and key not in self.ds.features:
                raise DatasetError(f"{info}: no feature {key!r}; the dataset has {sorted(self.ds.features)}")
        shapes = {tuple(self.ds.features[k]["shape"]) for k in keys}
        if len(shapes) > 1:
            raise DatasetError(
                f"{info}: cameras {list(keys)} differ in frame size {sorted(shapes)}; stacked cameras need one size"
            )
        self.state_key, self.action_key = state_key, action_key
        for key in keys:
            if FrameCache.wanted(self.ds, key, cache):
                self.ds.frame_cache = FrameCache(self.ds, key, cache_dir, progress=progress)
        self.anchors = self._anchors()
        if len(self.anchors) == 0:
            raise ValueError(
                f"no clip of {self.spec.frames} frames (frameskip {self.spec.frameskip}) fits in any episode of "
                f"{self.ds.root} (longest episode: {self.ds.lengths.max() if self.ds.num_episodes else 0} frames)"
            )

    def _anchors(self) -> np.ndarray:
        """Dataset rows usable as anchors."""
        lo = -int(self.spec.frame_deltas()[0])  # frames needed before the anchor
        hi = int(self.spec.frame_deltas()[-1])  # frames needed after it
        rows = []
        for pos in range(self.ds.num_episodes):
            n, start = int(self.ds.lengths[pos]), int(self.ds.starts[pos])
            first, last = (0, n - 1) if self.spec.allow_pad else (lo, n - 1 - hi)
            if last >= first:
                rows.append(np.arange(start + first, start + last + 1))
        return np.concatenate(rows) if rows else np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self.anchors)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        row = int(self.anchors[i])
        fd, ad = self.spec.frame_deltas(), self.spec.action_deltas()
        deltas = {key: fd for key in self.image_keys}
        if self.state_key is not None:
            deltas[self.state_key] = fd
        if self.action_key is not None:
            deltas[self.action_key] = ad
        q = self.ds.query(row, deltas)
        pos, frame = self.ds.locate(row)
        out = {
            "frames": torch.from_numpy(np.concatenate([q[k] for k in self.image_keys], axis=-1))
            .permute(0, 3, 1, 2)
            .contiguous(),  # (T, 3K, H, W)
            "frames_is_pad": torch.from_numpy(q[f"{self.image_key}_is_pad"]),
            "episode_index": torch.tensor(int(self.ds.episode_index[pos])),
            "frame_index": torch.tensor(frame),
        }
        if self.state_key is not None:
            out["state"] = torch.from_numpy(np.asarray(q[self.state_key], np.float32))
            out["state_is_pad"] = torch.from_numpy(q[f"{self.state_key}_is_pad"])
        if self.action_key is not None:
            k, steps = self.spec.frameskip, self.spec.frames - 1
            actions = q[self.action_key].reshape(steps, -1)  # (T - 1, k * A)
            # a model action is padded if any env step in it lies outside the episode's transitions:
            # the last row of an episode holds the final observation, not a transition
            action_rows = frame + ad
            action_pad = (
                ((action_rows < 0) | (action_rows > int(self.ds.lengths[pos]) - 2))
                .reshape(steps, k)
                .any(axis=1)
            )
            out["actions"] = torch.from_numpy(np.asarray(actions, np.float32))
            out["actions_is_pad"] = torch.from_numpy(action_pad)
        return out
