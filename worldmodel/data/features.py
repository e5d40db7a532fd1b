"""Frozen-encoder features of a dataset, computed once and stored for predictor training.

Each frame is encoded alone (repeated to fill a tubelet, as V-JEPA 2-AC does), layer-normed,
pooled to ``pool`` x ``pool`` tokens, and standardised per dimension with statistics of the
training frames. Standardisation matters: on plain layer-normed features the frame-to-frame
change is small against the feature scale, so copying the last frame is nearly optimal for an L1
loss and a predictor has little to learn from.

``FeatureStore`` writes ``features.npy`` (float16, (N_frames, N, D) in dataset row order) and
``features.json`` (encoder run, pool, mean/std) into a directory; ``FeatureClips`` serves
(z, actions, states) sequences from it for training.

Legend: B batch, T frames, N tokens per frame (pooled), D width, A action dim, P state dim.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm import tqdm

from worldmodel.data import ClipSpec, LeRobotDataset
from worldmodel.encoder import encode_frames, pool_tokens, to_float_frames


@torch.no_grad()
def episode_features(
    dataset: LeRobotDataset,
    encoder,
    positions,
    device: str | torch.device = "cpu",
    image_keys: tuple[str, ...] = (),
) -> Iterator[tuple[Tensor, np.ndarray]]:
    """For each episode position in turn (one batch per episode): full-grid layer-normed features
    of all its frames (n, N*D) on the CPU and their proprio states (n, P). ``image_keys``: the
    cameras the encoder sees, stacked (default the first)."""
    keys = tuple(image_keys) or tuple(dataset.video_keys[:1])
    for pos in positions:
        rows = dataset.episode_rows(int(pos))
        frames = to_float_frames(dataset.camera_frames(keys, int(pos), np.arange(rows.stop - rows.start)))
        z = encode_frames(encoder, frames.to(device), 0).flatten(1).cpu()
        yield z, dataset.columns["observation.state"][rows]


class FeatureStore:
    """Stored features of one dataset under one encoder and pooling."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        meta_path = self.path / "features.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"no features at {self.path}: build them with FeatureStore.build")
        self.meta = json.loads(meta_path.read_text())
        self.mean = torch.tensor(self.meta["mean"], dtype=torch.float32)
        self.std = torch.tensor(self.meta["std"], dtype=torch.float32)
        self._array: np.ndarray | None = None

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.path / "features.npy", mmap_mode="r")
        return self._array

    @property
    def image_keys(self) -> tuple[str, ...]:
        """The cameras the features were built on, in token order."""
        return tuple(self.meta.get("image_keys") or [self.meta["image_key"]])  # one "image_key": older stores

    def normalize(self, z: Tensor) -> Tensor:
        """Layer-normed pooled tokens (..., N, D) -> standardised (..., N, D)."""
        return (z - self.mean.to(z.device)) / self.std.to(z.device)

    def rows(self, rows: np.ndarray) -> Tensor:
        """Standardised features at dataset rows -> (n, N, D) float32."""
        return torch.from_numpy(np.asarray(self.array[np.asarray(rows)], dtype=np.float32))

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_array"] = None
        return state

    @classmethod
    def build(
        cls, dataset: LeRobotDataset, encoder, pool: int, out: Path, *, train_episodes: list[int] | None = None,
        device: str | torch.device = "cpu", batch: int = 256, progress: bool = True, encoder_run: str = "",
        image_keys: tuple[str, ...] = (),
        full_grid: dict[int, Tensor] | None = None,
    ) -> FeatureStore:  # fmt: skip
        """Encode every frame of ``dataset``'s cameras ``image_keys`` (default the first; several:
        each encoded alone, their tokens side by side, (N_frames, K*N, D)); statistics from
        ``train_episodes`` (default all). ``full_grid``: its keys name episodes (by index) whose
        unpooled layer-normed features (n, K*grid*grid*D) are put into it on the CPU, as
        ``episode_features`` gives them (for the goal read-out, without a second encoding)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        keys = tuple(image_keys) or tuple(dataset.video_keys[:1])
        n = dataset.num_frames
        grid = encoder.cfg.grid
        side = pool or grid
        tmp = out / "features.npy.tmp"
        arr = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.float16, shape=(n, len(keys) * side * side, encoder.cfg.dim)
        )
        bar = tqdm(total=n, desc="encoding frames", unit="frame", disable=not progress, leave=False)
        for pos in range(dataset.num_episodes):
            rows = dataset.episode_rows(pos)
            length = rows.stop - rows.start
            episode = int(dataset.episode_index[pos])
            for s in range(0, length, batch):
                idx = np.arange(s, min(s + batch, length))
                frames = to_float_frames(dataset.camera_frames(keys, pos, idx))
                if full_grid is not None and episode in full_grid:
                    full = encode_frames(encoder, frames.to(device), 0)
                    part = full.flatten(1).cpu()
                    full_grid[episode] = torch.cat([full_grid[episode], part]) if s else part
                    z = pool_tokens(full, grid, pool)
                else:
                    z = encode_frames(encoder, frames.to(device), pool)
                arr[rows.start + s : rows.start + s + len(idx)] = z.cpu().numpy().astype(np.float16)
                bar.update(len(idx))
        bar.close()
        arr.flush()
        # per-dimension statistics over the training frames' tokens
        train_rows = np.arange(n) if train_episodes is None else np.concatenate(
            [np.arange(dataset.episode_rows(p).start, dataset.episode_rows(p).stop)
             for p in range(dataset.num_episodes) if int(dataset.episode_index[p]) in set(train_episodes)]
        )  # fmt: skip
        sample = train_rows[np.linspace(0, len(train_rows) - 1, min(len(train_rows), 5000)).astype(int)]
        x = np.asarray(arr[sample], np.float64).reshape(-1, arr.shape[-1])
        mean, std = x.mean(0), x.std(0) + 1e-3
        for s in range(0, n, 4096):  # standardise in place
            arr[s : s + 4096] = ((np.asarray(arr[s : s + 4096], np.float64) - mean) / std).astype(np.float16)
        arr.flush()
        del arr
        tmp.replace(out / "features.npy")
        meta = {"encoder_run": encoder_run, "image_keys": list(keys), "pool": pool, "tokens": len(keys) * side * side,
                "dim": encoder.cfg.dim,
                "frames": n, "mean": mean.tolist(), "std": std.tolist(),
                "episode_starts": {str(int(e)): int(s) for e, s in zip(dataset.episode_index, dataset.starts)}}  # fmt: skip
        (out / "features.json").write_text(json.dumps(meta))
        return cls(out)


class FeatureClips(Dataset):
    """Sequences of stored features with the actions and states between them.

    Item: ``z`` (T, N, D) standardised features of frames t, t+k, ..., ``actions`` (T, k*A) (the
    k env actions after each frame; the last one is zero: no frame follows), ``states`` (T, P).
    Only sequences that lie wholly inside an episode are served.
    """

    def __init__(self, dataset: LeRobotDataset, store: FeatureStore, frames: int, frameskip: int):
        self.ds, self.store = dataset, store
        self.spec = ClipSpec(context=1, future=frames - 1, frameskip=frameskip)
        hi = int(self.spec.frame_deltas()[-1])
        anchors = []
        for pos in range(dataset.num_episodes):
            start, n = int(dataset.starts[pos]), int(dataset.lengths[pos])
            if n - 1 - hi >= 0:
                anchors.append(np.arange(start, start + n - hi))
        if not anchors:
            raise ValueError(f"no sequence of {frames} frames at frameskip {frameskip} fits in any episode")
        self.anchors = np.concatenate(anchors)
        starts = store.meta["episode_starts"]
        missing = [int(e) for e in dataset.episode_index if str(int(e)) not in starts]
        if missing:
            raise ValueError(
                f"the features at {store.path} lack episodes {missing[:10]}: built on another dataset?"
            )
        # the store's row of each of this dataset's episode starts (the store covers the full dataset)
        self.store_starts = np.array([starts[str(int(e))] for e in dataset.episode_index], np.int64)

    def __len__(self) -> int:
        return len(self.anchors)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {k: v[0] for k, v in self.batch([i]).items()}

    def batch(self, indices) -> dict[str, Tensor]:
        """Sequences ``indices`` at once (vectorised: one gather per array) -> z (B, T, N, D),
        actions (B, T, k*A), states (B, T, P)."""
        rows = self.anchors[np.asarray(indices)]  # (B,) dataset rows of the anchors
        fd, ad = self.spec.frame_deltas(), self.spec.action_deltas()
        B, T = len(rows), self.spec.frames
        pos = np.searchsorted(self.ds.starts, rows, side="right") - 1
        frame = rows - self.ds.starts[pos]
        store_rows = (self.store_starts[pos] + frame)[:, None] + fd  # (B, T)
        z = np.asarray(self.store.array[store_rows.ravel()], dtype=np.float32)
        z = z.reshape(B, T, *z.shape[1:])  # (B, T, N, D)
        states = self.ds.columns["observation.state"][rows[:, None] + fd].astype(np.float32)  # (B, T, P)
        acts = self.ds.columns["action"][rows[:, None] + ad].astype(np.float32)  # (B, (T-1)*k, A)
        actions = np.zeros((B, T, self.spec.frameskip * acts.shape[2]), np.float32)
        if T > 1:
            actions[:, :-1] = acts.reshape(B, T - 1, -1)  # the last frame has no following action
        return {
            "z": torch.from_numpy(z),
            "actions": torch.from_numpy(actions),
            "states": torch.from_numpy(states),
        }
