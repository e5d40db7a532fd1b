"""The cost landscape of world models, side by side: does the latent distance order states as the simulator does?

For each world model (a ``train-ac`` or ``train-joint`` run) on the held-out episodes of its
dataset: the frame order (Spearman rank correlation of the latent distance to a goal frame with
the true state distance, mean over goal frames) and the candidate order (share of pairs of
random candidate plans, from dataset-goal starts, that the latent cost orders as the true
simulator does), both from ``worldmodel.eval.landscape``. Writes a Markdown table and a JSON file.

    python experiments/landscape.py --task pointmass --models runs/demo/predictor runs/joint-pm
    python experiments/landscape.py --task reacher --models runs/ac-re runs/joint-re --episodes 50 --out landscape-re
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import tyro


@dataclass(frozen=True)
class LandscapeConfig:
    """The cost landscape of world models, side by side: frame order and candidate order on held-out episodes."""

    task: str
    """task id or short name"""
    models: tuple[Path, ...]
    """world-model run directories (train-ac or train-joint)"""
    data: Path | None = None
    """dataset of the held-out frames and starts (default: each model's training dataset)"""
    goals: int = 20
    """goal frames of the frame order"""
    frames: int = 200
    """frames ranked against each goal frame"""
    episodes: int = 50
    """dataset-goal starts of the candidate order"""
    candidates: int = 64
    """random candidate plans per start"""
    horizon: int = 5
    """model steps per candidate plan"""
    action_block: int = 5
    """env steps per model step"""
    goal_offset: int = 25
    """env steps between a start and its goal frame"""
    metric: Literal["l1", "l2"] = "l2"
    """latent distance"""
    seed: int = 0
    threads: int = 2
    """torch intra-op threads"""
    out: Path = Path("landscape")
    """directory of landscape.md and landscape.json"""


def measure(cfg: LandscapeConfig, model: Path) -> dict:

    from planners import make_oracle_cost
    from worldmodel.data import LeRobotDataset
    from worldmodel.eval.landscape import candidate_order, frame_order, random_candidates
    from worldmodel.eval.protocol import EvalConfig, _dataset_start, goal_source, task_env
    from worldmodel.world_model import WorldModel, make_latent_goal_cost

    wm = WorldModel.load(model)
    ecfg = EvalConfig(task=cfg.task, model=model, data=cfg.data, goal_offset=cfg.goal_offset)
    data, held = goal_source(model, cfg.data)
    ds = LeRobotDataset(data, episodes=held, check_videos=False)
    env = task_env(cfg.task, int(ds.features[ds.video_keys[0]]["shape"][0]), wm.image_keys)
    task = env.unwrapped
    frames = frame_order(wm, ds, task, goals=cfg.goals, frames=cfg.frames, metric=cfg.metric, seed=cfg.seed)
    orders = []
    for i in range(cfg.episodes):
        start, goal_phys, _, _ = _dataset_start(ds, ecfg, cfg.seed, i)
        env.reset(seed=i, options={"state": start, "goal_state": goal_phys})
        obs = task.observe()
        z_goal = wm.encode(task.goal_image()[None])[0]
        s0 = torch.as_tensor(obs["state"][None], dtype=torch.float32)
        cost = make_latent_goal_cost(wm, wm.encode(obs["pixels"][None]), s0, z_goal, metric=cfg.metric)
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + i)
        cands = random_candidates(cfg.candidates, cfg.horizon, wm.action_dim, g)
        orders.append(candidate_order(cost, make_oracle_cost(env, cfg.action_block), cands))
    env.close()
    return {"model": str(model), "frame_spearman": frames["spearman"], "frame_goals": frames["goals"],
            "candidate_order": float(np.nanmean(orders)), "episodes": cfg.episodes}  # fmt: skip


def main(cfg: LandscapeConfig) -> list[dict]:
    from worldmodel.eval.report import markdown_table

    torch.set_num_threads(cfg.threads)
    rows = [measure(cfg, m) for m in cfg.models]
    table = markdown_table(
        ["model", "frame order (Spearman)", "candidate order (pairs)", "goal frames", "starts"],
        [[r["model"], f"{r['frame_spearman']:.3f}", f"{r['candidate_order']:.3f}", str(r["frame_goals"]),
          str(r["episodes"])] for r in rows],
    )  # fmt: skip
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "landscape.md").write_text(table + "\n")
    (cfg.out / "landscape.json").write_text(json.dumps({"config": str(cfg), "rows": rows}, indent=1))
    print(table)
    return rows


if __name__ == "__main__":
    main(tyro.cli(LandscapeConfig))
