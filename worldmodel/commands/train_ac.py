"""``wm train-ac``: the action-conditioned predictor on a frozen encoder (see ``worldmodel.train_ac``)."""

from __future__ import annotations

from worldmodel.train_ac import TrainACConfig, train_ac


def main(cfg: TrainACConfig) -> dict:
    metrics = train_ac(cfg)
    if metrics:
        print("[train-ac] " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    print(f"[train-ac] run directory: {cfg.out}")
    return metrics


__all__ = ["TrainACConfig", "main"]
