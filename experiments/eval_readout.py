"""How well can a goal's proprio state be read from one frame? Read-outs compared on held-out episodes.

For an encoder run and a dataset: encode frames of training and held-out episodes (full token
grid, layer-normed, as ``train-ac``'s read-out does), fit each read-out on the training frames and
report, on the held-out frames, the mean absolute error per state dim in the env's units (angles
wrapped), and the share of frames whose every read dim (``--dims``) is within ``--tol``:

* ridge on the raw state (the read-out before angle encoding),
* ridge on the encoded state (angle dims as (cos, sin), decoded by atan2),
* MLP on the encoded state;

and which of the last two ``train-ac``'s default read-out (``auto``) would keep.

    python experiments/eval_readout.py --data /tmp/bench/Reacher-v0/data --encoder /tmp/bench/Reacher-v0/encoder --dims 0 1 --tol 0.05
    python experiments/eval_readout.py --data data/pointmass --encoder runs/enc-pm --test-episodes 20
    python experiments/eval_readout.py --data data/reacher --encoder runs/enc-reacher --mlp-steps 2000
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from worldmodel.data import LeRobotDataset
from worldmodel.data.features import episode_features
from worldmodel.readout.codec import StateCodec
from worldmodel.readout.fit import fit_readout, r2_on_mlp_dims
from worldmodel.train.predictor import TrainACConfig
from worldmodel.world_model import load_encoder


@dataclass(frozen=True)
class EvalReadoutConfig:
    """How well can a goal's proprio state be read from one frame? Read-outs compared on held-out episodes."""

    data: Path
    """LeRobot dataset directory"""
    encoder: Path
    """encoder run directory (a pretrain run, with encoder.safetensors)"""
    train_episodes: int | None = None
    """fit on the dataset's first N episodes (default: all but the held-out)"""
    test_episodes: int = 40
    """score on the dataset's last N episodes"""
    angles: tuple[int, ...] | None = None
    """state dims that are angles, encoded as (cos, sin) (default: the task's; none: pass --angles alone)"""
    dims: tuple[int, ...] | None = None
    """state dims a frame shows: the error columns and the all-within share (default: all)"""
    tol: float = 0.05
    """tolerance, in the env's units, of the all-within share"""
    mlp_steps: int = TrainACConfig.readout_steps
    """the MLP fit's steps (default: train-ac's --readout-steps)"""
    threads: int = 2
    """torch intra-op threads"""


def main(cfg: EvalReadoutConfig) -> None:
    if cfg.dims is not None and not cfg.dims:
        raise SystemExit("--dims needs at least one dim")
    torch.set_num_threads(cfg.threads)
    ds = LeRobotDataset(cfg.data, check_videos=False)
    train_episodes = cfg.train_episodes
    if train_episodes is None:
        train_episodes = ds.num_episodes - cfg.test_episodes
    if train_episodes < 1 or train_episodes + cfg.test_episodes > ds.num_episodes:
        raise SystemExit(
            f"{cfg.data} has {ds.num_episodes} episodes; asked for {train_episodes} + {cfg.test_episodes}"
        )
    angles = cfg.angles
    if angles is None:
        from envs.registration import task_angle_dims

        angles = task_angle_dims(ds.info.get("robot_type"))
    P = ds.columns["observation.state"].shape[1]
    codec, plain = StateCodec(P, tuple(angles)), StateCodec(P)
    dims = list(cfg.dims) if cfg.dims is not None else list(range(P))
    encoder = load_encoder(cfg.encoder, "cpu")

    def encode(positions) -> tuple[np.ndarray, np.ndarray]:
        feats, states = zip(*episode_features(ds, encoder, positions))
        return torch.cat(feats).numpy(), np.concatenate(states).astype(np.float32)

    t = time.time()
    x_tr, y_tr = encode(range(train_episodes))
    x_te, y_te = encode(range(ds.num_episodes - cfg.test_episodes, ds.num_episodes))
    print(f"# {cfg.data} / {cfg.encoder}: {len(x_tr)} training frames, {len(x_te)} held-out frames "
          f"({cfg.test_episodes} episodes), angles {list(angles)}; encoded in {time.time() - t:.0f} s")  # fmt: skip
    perm = np.random.default_rng(1).permutation(len(x_tr))
    names = ds.features["observation.state"].get("names") or [f"s{i}" for i in range(P)]
    print(
        "| read-out | " + " | ".join(f"{names[d]} error" for d in dims) + f" | all within {cfg.tol} | fit s |"
    )
    print("|---|" + "---|" * (len(dims) + 2))
    fitted = {}
    for label, kind, c in (("ridge, raw state", "ridge", plain), ("ridge, encoded state", "ridge", codec),
                           ("MLP, encoded state", "mlp", codec)):  # fmt: skip
        t = time.time()
        targets = c.encode(torch.from_numpy(y_tr[perm])).numpy()
        probe = fit_readout(kind, x_tr[perm], targets, mlp_steps=cfg.mlp_steps)
        fitted[label] = probe
        with torch.no_grad():
            decoded = c.decode(probe(torch.from_numpy(x_te)))
        err = codec.difference(decoded, torch.from_numpy(y_te)).numpy()[:, dims]
        within = float((err < cfg.tol).all(1).mean())
        cells = " | ".join(f"{v:.3f}" for v in err.mean(0))
        print(f"| {label} | {cells} | {100 * within:.1f}% | {time.time() - t:.0f} |", flush=True)
    ridge, mlp = fitted["ridge, encoded state"], fitted["MLP, encoded state"]
    r2_mlp, r2_ridge = r2_on_mlp_dims(mlp, ridge)
    pick = "MLP" if r2_mlp >= r2_ridge else "ridge"
    print(f"# train-ac's default read-out (auto) keeps: {pick} (mean held-out R^2 of the fits on the "
          f"{int(mlp.kept.sum())} dims the MLP reads: MLP {r2_mlp:.3f}, ridge {r2_ridge:.3f})")  # fmt: skip


if __name__ == "__main__":
    main(tyro.cli(EvalReadoutConfig))
