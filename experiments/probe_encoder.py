"""Frozen-feature probes of a pretrained encoder against random init and raw pixels.

For a pretraining run and its dataset: encode frames of training episodes (to fit) and of the
run's held-out episodes (to score) with (1) the pretrained encoder, (2) the same architecture at
its random initialisation (same seed as the run), (3) raw pixels downsampled to 16x16; fit a
ridge probe to the proprio state (and, for pushing, the block pose from the recorded physics
state) and report held-out R^2 and RMSE in state units (positions; angles as cos/sin). Also
reports, for (1) and (2) on held-out frame pairs, the motion sensitivity (relative to the
features' spread), the absolute motion change and the feature std.

    python experiments/probe_encoder.py --run runs/enc-reacher
    python experiments/probe_encoder.py --run runs/enc-pusht --frames 4000
    python experiments/probe_encoder.py --run runs/enc-pm --data data/pointmass --test-frames 500
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from worldmodel.data import LeRobotDataset
from worldmodel.encoder import EncoderConfig, VideoEncoder, encode_frames, to_float_frames
from worldmodel.eval.representation import (
    feature_std,
    linear_probe,
    motion_change,
    pixel_features,
    sensitivity,
)
from worldmodel.train.config import load_config_dict
from worldmodel.world_model import load_encoder


@dataclass(frozen=True)
class ProbeEncoderConfig:
    """Frozen-feature probes of a pretrained encoder against random init and raw pixels."""

    run: Path
    """the pretrain run directory; the result is written to its probe.json"""
    data: Path | None = None
    """LeRobot dataset directory (default: the run's dataset)"""
    frames: int = 3000
    """training frames for the probe"""
    test_frames: int = 1500
    """held-out frames the probe is scored on"""
    threads: int = 2
    """torch intra-op threads"""


def sample_rows(ds: LeRobotDataset, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(ds.num_frames, size=min(n, ds.num_frames), replace=False))


def load_frames(ds: LeRobotDataset, key: str, rows: np.ndarray) -> torch.Tensor:
    out = []
    for r in rows:
        pos, f = ds.locate(int(r))
        out.append(ds.frames(key, pos, [f])[0])
    return to_float_frames(np.stack(out))  # (n, C, H, W)


def targets(ds: LeRobotDataset, rows: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """What one frame shows: positions from the proprio state (velocities are not visible in a
    single frame, so they are left out), joint angles as cos/sin (no wrap-around for a linear
    read-out), and for pushing tasks the block pose (x, y, cos, sin) from the physics state."""
    state = ds.columns["observation.state"][rows]
    names = list(ds.features["observation.state"]["names"] or [f"s{i}" for i in range(state.shape[1])])
    cols, out_names = [], []
    angular = "Reacher" in str(ds.info.get("robot_type"))
    for i, n in enumerate(names):
        if "vel" in n or n.startswith("v") or "_v" in n:  # velocities: not visible in one frame
            continue
        if angular:
            cols += [np.cos(state[:, i]), np.sin(state[:, i])]
            out_names += [f"cos {n}", f"sin {n}"]
        else:
            cols.append(state[:, i])
            out_names.append(n)
    if "Push" in str(ds.info.get("robot_type")) and "observation.environment_state" in ds.columns:
        q = ds.columns["observation.environment_state"][rows][:, 1:6]  # qpos: pusher xy, block xy, yaw
        cols += [q[:, 2], q[:, 3], np.cos(q[:, 4]), np.sin(q[:, 4])]
        out_names += ["block_x", "block_y", "block_cos", "block_sin"]
    return np.stack(cols, axis=1), out_names


@torch.no_grad()
def encode(fn, frames: torch.Tensor, batch: int = 256) -> np.ndarray:
    return torch.cat([fn(frames[i : i + batch]) for i in range(0, len(frames), batch)]).numpy()


def main(cfg: ProbeEncoderConfig) -> dict:
    torch.set_num_threads(cfg.threads)
    saved = load_config_dict(cfg.run)
    data = cfg.data or Path(saved["run"]["data"])
    held = saved["held_out_episodes"]
    full = LeRobotDataset(data, check_videos=False)
    train_eps = [int(e) for e in full.episode_index if int(e) not in set(held)]
    train, test = LeRobotDataset(data, episodes=train_eps), LeRobotDataset(data, episodes=held)
    key = train.video_keys[0]
    tr_rows, te_rows = sample_rows(train, cfg.frames, 0), sample_rows(test, cfg.test_frames, 1)
    x_tr, x_te = load_frames(train, key, tr_rows), load_frames(test, key, te_rows)
    y_tr, names = targets(train, tr_rows)
    y_te, _ = targets(test, te_rows)

    pretrained = load_encoder(cfg.run)
    torch.manual_seed(saved["run"]["loop"]["seed"])  # the run's initialisation
    random_init = VideoEncoder(EncoderConfig(**saved["model"]["encoder"])).eval()
    encoders = {"pretrained": pretrained, "random init": random_init}
    results = {}
    for name, enc in encoders.items():
        features = lambda f, e=enc: encode_frames(e, f, 4).flatten(1)  # noqa: E731  (B, 4*4*D)
        results[name] = linear_probe(encode(features, x_tr), y_tr, encode(features, x_te), y_te)
    results["raw pixels 16x16"] = linear_probe(
        encode(pixel_features, x_tr), y_tr, encode(pixel_features, x_te), y_te
    )

    # motion sensitivity on held-out consecutive-frame pairs (t, t+2)
    pairs = [r for r in te_rows if test.locate(int(r))[1] + 2 < test.lengths[test.locate(int(r))[0]]][:256]
    a, b = load_frames(test, key, np.array(pairs)), load_frames(test, key, np.array(pairs) + 2)
    for name, enc in encoders.items():
        za, zb = (
            enc(a[:, None].expand(-1, enc.cfg.tubelet, -1, -1, -1)),
            enc(b[:, None].expand(-1, enc.cfg.tubelet, -1, -1, -1)),
        )
        results[name]["sensitivity"] = sensitivity(za, zb)
        results[name]["motion_change"] = motion_change(za, zb)
        results[name]["feature_std"] = feature_std(za)

    print(
        f"# {cfg.run} on {data}: probe fit on {len(tr_rows)} frames of {len(train_eps)} episodes, "
        f"scored on {len(te_rows)} frames of {len(held)} held-out episodes"
    )
    print(
        "| features | R^2 (mean) | "
        + " | ".join(f"RMSE {n}" for n in names)
        + " | sensitivity | motion change | feature std |"
    )
    print("|---|---|" + "---|" * len(names) + "---|---|---|")
    for name, r in results.items():
        rmse = " | ".join(f"{v:.3f}" for v in r["rmse_per_dim"])
        sens = f"{r['sensitivity']:.3f}" if "sensitivity" in r else "-"
        std = f"{r['feature_std']:.3f}" if "feature_std" in r else "-"
        moved = f"{r['motion_change']:.3f}" if "motion_change" in r else "-"
        print(f"| {name} | {r['r2']:.3f} | {rmse} | {sens} | {moved} | {std} |")
    result = {"targets": names, **results}
    (cfg.run / "probe.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(tyro.cli(ProbeEncoderConfig))
