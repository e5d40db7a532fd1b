"""``wm info DATA``: a one-screen summary of a LeRobot dataset (v3.0 or v2.1).

    wm info data/pointmass
    wm info data/my_robot --json        # the same as JSON, for scripts

What it says: the format version, fps, episodes and frames (episode lengths), each camera with
its resolution, codec and pixel format, every other feature with its dtype, shape and names and
its statistics over all frames (computed from the data, not read from ``meta/stats.json``), and
what the trainers take by default (the first camera, ``observation.state``, ``action``) and
whether ``wm eval`` can draw dataset goals from it (``observation.environment_state``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from worldmodel.data import format as fmt

STATE_KEY, ACTION_KEY, PHYSICS_KEY = "observation.state", "action", "observation.environment_state"


@dataclass(frozen=True)
class InfoConfig:
    """Summarise a LeRobot dataset: features, cameras, fps, episodes, statistics, trainer defaults."""

    data: Annotated[Path, tyro.conf.Positional]
    """dataset directory (holds meta/info.json)"""
    json: bool = False
    """print the summary as JSON instead of the table"""


def summarize(root: Path | str) -> dict:
    """The summary of the dataset at ``root`` as a plain dict (what ``wm info --json`` prints)."""
    from worldmodel.data import LeRobotDataset

    ds = LeRobotDataset(root)  # checks the data against its metadata, videos included
    cameras = {}
    for key in ds.video_keys:
        feat = ds.features[key]
        info = feat.get("info") or {}
        channels_first = (feat.get("names") or [])[:1] == ["channels"]  # (3, H, W) in some v2.1 datasets
        h, w = feat["shape"][1:] if channels_first else feat["shape"][:2]
        cameras[key] = {"height": int(h), "width": int(w), "codec": info.get("video.codec"),
                        "pix_fmt": info.get("video.pix_fmt")}  # fmt: skip
    features = {}
    for key, feat in ds.features.items():
        if key in ds.video_keys or key in fmt.DEFAULT_FEATURE_KEYS:
            continue
        entry = {"dtype": feat["dtype"], "shape": list(feat["shape"]), "names": fmt.feature_names(feat)}
        col = ds.columns.get(key)
        if col is not None and np.issubdtype(col.dtype, np.number) and len(col):
            x = col.reshape(len(col), -1).astype(np.float64)
            entry["stats"] = {
                s: getattr(np, s)(x, axis=0).round(6).tolist() for s in ("min", "mean", "std", "max")
            }
        features[key] = entry
    lengths = ds.lengths.astype(int)
    if not len(lengths):
        raise ValueError(f"{root}: the dataset has no episodes")
    return {
        "path": str(Path(root)),
        "version": ds.version,
        "fps": ds.fps,
        "episodes": ds.num_episodes,
        "frames": ds.num_frames,
        "episode_length": {
            "min": int(lengths.min()),
            "mean": float(lengths.mean()),
            "max": int(lengths.max()),
        },
        "cameras": cameras,
        "features": features,
        "defaults": {
            "camera": ds.video_keys[0] if ds.video_keys else None,
            "state": STATE_KEY if STATE_KEY in ds.features else None,
            "action": ACTION_KEY if ACTION_KEY in ds.features else None,
            "dataset_goals": PHYSICS_KEY in ds.features,
        },
    }


def render(summary: dict) -> str:
    """The summary as the table ``wm info`` prints."""
    ln = summary["episode_length"]
    out = [f"{summary['path']}: LeRobot {summary['version']}, {summary['fps']:g} fps, {summary['episodes']} episodes, "
           f"{summary['frames']} frames (episode length {ln['min']}-{ln['max']}, mean {ln['mean']:.1f})", "",
           "cameras:"]  # fmt: skip
    for key, cam in summary["cameras"].items():
        out.append(f"  {key:<32} {cam['width']}x{cam['height']}  {cam['codec']}  {cam['pix_fmt']}")
    if not summary["cameras"]:
        out.append("  (none)")
    out += ["", "features:                          dtype     shape   per-dim min / mean / std / max"]
    for key, f in summary["features"].items():
        out.append(f"  {key:<32} {f['dtype']:<9} {tuple(f['shape'])!s:<7}")
        stats, names = f.get("stats"), f.get("names") or []
        dims = len(stats["mean"]) if stats else 0
        for d in range(min(dims, 12)):
            name = names[d] if d < len(names) else f"[{d}]"
            row = " / ".join(f"{stats[s][d]:.3g}" for s in ("min", "mean", "std", "max"))
            out.append(f"      {name:<30} {row}")
        if dims > 12:
            out.append(f"      ... {dims - 12} more dims (--json lists them)")
    d = summary["defaults"]
    out += ["", "trainers use by default:",
            f"  camera {d['camera']}, state {d['state']}, action {d['action']}",
            "  wm eval dataset goals: " + ("yes (observation.environment_state)" if d["dataset_goals"]
                                           else "no (no observation.environment_state: no simulator state)")]  # fmt: skip
    return "\n".join(out)


def info(cfg: InfoConfig) -> dict:
    summary = summarize(cfg.data)
    print(json.dumps(summary, indent=2) if cfg.json else render(summary))
    return summary
