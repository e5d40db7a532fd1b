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
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from worldmodel.datasets import LeRobotDataset
from worldmodel.features import episode_features
from worldmodel.pretrain import load_encoder
from worldmodel.state_codec import StateCodec
from worldmodel.state_probe import fit_readout, r2_on_mlp_dims
from worldmodel.train_ac import TrainACConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--encoder", type=Path, required=True)
    p.add_argument(
        "--train-episodes",
        type=int,
        default=None,
        help="the dataset's first ones (default: all but the held-out)",
    )
    p.add_argument("--test-episodes", type=int, default=40, help="the dataset's last episodes")
    p.add_argument("--angles", type=int, nargs="*", default=None, help="default: the task's")
    p.add_argument("--dims", type=int, nargs="+", default=None, help="dims a frame shows (default: all)")
    p.add_argument("--tol", type=float, default=0.05)
    p.add_argument(
        "--mlp-steps",
        type=int,
        default=TrainACConfig.readout_steps,
        help="the MLP fit's steps (default: train-ac's --readout-steps)",
    )
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ds = LeRobotDataset(args.data, check_videos=False)
    if args.train_episodes is None:
        args.train_episodes = ds.num_episodes - args.test_episodes
    if args.train_episodes < 1 or args.train_episodes + args.test_episodes > ds.num_episodes:
        raise SystemExit(
            f"{args.data} has {ds.num_episodes} episodes; asked for {args.train_episodes} + {args.test_episodes}"
        )
    angles = args.angles
    if angles is None:
        from envs.registration import task_angle_dims

        angles = task_angle_dims(ds.info.get("robot_type"))
    P = ds.columns["observation.state"].shape[1]
    codec, plain = StateCodec(P, tuple(angles)), StateCodec(P)
    dims = args.dims if args.dims is not None else list(range(P))
    encoder = load_encoder(args.encoder, "cpu")

    def encode(positions) -> tuple[np.ndarray, np.ndarray]:
        feats, states = zip(*episode_features(ds, encoder, positions))
        return torch.cat(feats).numpy(), np.concatenate(states).astype(np.float32)

    t = time.time()
    x_tr, y_tr = encode(range(args.train_episodes))
    x_te, y_te = encode(range(ds.num_episodes - args.test_episodes, ds.num_episodes))
    print(f"# {args.data} / {args.encoder}: {len(x_tr)} training frames, {len(x_te)} held-out frames "
          f"({args.test_episodes} episodes), angles {list(angles)}; encoded in {time.time() - t:.0f} s")  # fmt: skip
    perm = np.random.default_rng(1).permutation(len(x_tr))
    names = ds.features["observation.state"].get("names") or [f"s{i}" for i in range(P)]
    print(
        "| read-out | "
        + " | ".join(f"{names[d]} error" for d in dims)
        + f" | all within {args.tol} | fit s |"
    )
    print("|---|" + "---|" * (len(dims) + 2))
    fitted = {}
    for label, kind, c in (("ridge, raw state", "ridge", plain), ("ridge, encoded state", "ridge", codec),
                           ("MLP, encoded state", "mlp", codec)):  # fmt: skip
        t = time.time()
        targets = c.encode(torch.from_numpy(y_tr[perm])).numpy()
        probe = fit_readout(kind, x_tr[perm], targets, mlp_steps=args.mlp_steps)
        fitted[label] = probe
        with torch.no_grad():
            decoded = c.decode(probe(torch.from_numpy(x_te)))
        err = codec.difference(decoded, torch.from_numpy(y_te)).numpy()[:, dims]
        within = float((err < args.tol).all(1).mean())
        cells = " | ".join(f"{v:.3f}" for v in err.mean(0))
        print(f"| {label} | {cells} | {100 * within:.1f}% | {time.time() - t:.0f} |", flush=True)
    ridge, mlp = fitted["ridge, encoded state"], fitted["MLP, encoded state"]
    r2_mlp, r2_ridge = r2_on_mlp_dims(mlp, ridge)
    pick = "MLP" if r2_mlp >= r2_ridge else "ridge"
    print(f"# train-ac's default read-out (auto) keeps: {pick} (mean held-out R^2 of the fits on the "
          f"{int(mlp.kept.sum())} dims the MLP reads: MLP {r2_mlp:.3f}, ridge {r2_ridge:.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
