"""``wm collect``: exploration episodes written as a LeRobot v3.0 dataset (see ``envs.collect``)."""

from __future__ import annotations

import json

from envs.collect import CollectConfig, collect


def main(cfg: CollectConfig) -> dict:
    summary = collect(cfg)
    print(f"[collect] {summary['episodes']} episodes, {summary['frames']} frames in {cfg.out}")
    print("[collect] coverage: " + json.dumps(summary.get("coverage", {})))
    return summary


__all__ = ["CollectConfig", "main"]
