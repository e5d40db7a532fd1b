"""``wm pretrain``: V-JEPA encoder pretraining on a LeRobot dataset (see ``worldmodel.pretrain``)."""

from __future__ import annotations

from worldmodel.pretrain import PretrainConfig, pretrain


def main(cfg: PretrainConfig) -> dict:
    metrics = pretrain(cfg)
    if metrics:
        print("[pretrain] " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    print(f"[pretrain] run directory: {cfg.out}")
    return metrics


__all__ = ["PretrainConfig", "main"]
