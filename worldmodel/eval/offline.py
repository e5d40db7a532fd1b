"""``wm eval-offline``: judge a world model on recorded episodes alone, no simulator.

    wm eval-offline --model runs/joint-pm                        # the run's held-out episodes
    wm eval-offline --model runs/ac-robot --data data/robot-day2 --horizon 8 --plans 100

Two measures, on held-out episodes (the run's; of another ``--data``, its held-out split as in
``wm eval``):

* **Open-loop prediction** per horizon h = 1..H model steps: from a frame t, the predictor rolled
  out with the recorded actions, against the frames recorded k, 2k, ... env steps later. Latent
  error (mean squared, the planner's metric) and proprio error (mean absolute, angles wrapped; the
  predictor's state head) of the model, of copying frame t, and of a constant velocity (frame t
  plus h x its change since t - k). With a read-out that reads the predicted features (an
  end-to-end run: one embedding per frame; or an unpooled grid), also the error of the state it
  reads off the predicted frame, on the dims it can read (trust > 0).
* **Planning toward recorded goals** (the offline test V-JEPA 2-AC reports): from frame t, CEM on
  the world model's cost toward the frame H model steps later; scored by the mean absolute error
  of the first planned action block against the recorded one (beside the box centre's and a
  uniformly random block's), and by the plan's predicted final proprio state against the
  recorded goal state (beside the start state's). The action box is the range of the actions
  recorded in the training episodes (those not held out).

``results.json``, ``results.md`` (the tables; whether the model beats copy-last at every horizon),
``horizons.png`` (error per horizon) and ``--videos`` mp4s (the recorded frame beside the
recorded and predicted proprio over the horizon) go to ``--out``.

Legend: H horizon (model steps), k env steps per model step, N tokens, D width, P proprio dim.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm import tqdm

from worldmodel.data import format as fmt
from worldmodel.eval.report import markdown_table

PREDICTORS = ("model", "copy-last", "constant-velocity")


@dataclass(frozen=True)
class EvalOfflineConfig:
    """Judge a world model on recorded episodes, no simulator: open-loop error and planning toward recorded goals."""

    model: Path
    """world-model run directory (train-ac or train-joint)"""
    data: Path | None = None
    """dataset (default: the run's own, its held-out episodes; another dataset: its held-out split)"""
    horizon: int = 5
    """model steps predicted open-loop, and between a planning start and its goal"""
    anchors: int = 200
    """start frames of the open-loop measure"""
    plans: int = 50
    """planning problems (0: skip planning)"""
    samples: int = 100
    elites: int = 10
    iterations: int = 10
    goal_state: Literal["decoded", "none"] = "decoded"
    """planning cost: decoded adds the proprio term on the state the read-out reads off the goal
    frame (as wm eval's model row); none: the latent distance alone"""
    videos: int = 4
    """videos of recorded vs predicted proprio"""
    seed: int = 0
    threads: int = 2
    """torch intra-op threads"""
    out: Path | None = None
    """run directory (default runs/eval-offline-<time>)"""
    progress: bool = True


def _starts(ds, span: int, back: int, n: int, rng) -> list[tuple[int, int]]:
    """n (episode position, frame) pairs with at least ``back`` frames before them and ``span`` after."""
    pool = [(p, t) for p in range(ds.num_episodes) for t in range(back, int(ds.lengths[p]) - span)]
    if not pool:
        raise ValueError(
            f"no held-out episode is longer than {back + span} frames (horizon x frameskip"
            + (", plus one model step)" if back else ")")
        )
    pick = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
    return [pool[i] for i in np.sort(pick)]


def evaluate_offline(cfg: EvalOfflineConfig) -> dict:
    from planners import make_planner
    from worldmodel.data import LeRobotDataset
    from worldmodel.data.video import write_video
    from worldmodel.eval.protocol import goal_source
    from worldmodel.world_model import WorldModel, make_latent_goal_cost

    if min(cfg.horizon, cfg.anchors, cfg.threads) < 1 or cfg.plans < 0:
        raise ValueError("horizon, anchors and threads must be >= 1, plans >= 0")
    if cfg.plans:
        make_planner("cem", cfg.horizon, cfg.samples, cfg.elites, cfg.iterations)  # a bad budget raises here
    torch.set_num_threads(cfg.threads)
    wm = WorldModel.load(cfg.model)
    data, held = goal_source(cfg.model, cfg.data)
    full = LeRobotDataset(data, check_videos=False)
    if not held or not full.video_keys or "action" not in full.features:
        what = "held-out episodes" if not held else "a camera" if not full.video_keys else "actions"
        raise ValueError(f"{data}: eval-offline needs {what}")
    ds = LeRobotDataset(data, episodes=held, check_videos=False)
    k, H = wm.frameskip, cfg.horizon
    states_all = (
        ds.columns["observation.state"].astype(np.float32) if "observation.state" in ds.columns else None
    )
    if states_all is not None and states_all.shape[1] != wm.state_codec.dim:
        raise ValueError(f"{data}: {states_all.shape[1]}-D states, the model's are {wm.state_codec.dim}-D")
    actions_all = ds.columns["action"].astype(np.float32)
    if actions_all.shape[1] * k != wm.action_dim:
        raise ValueError(
            f"{data}: {actions_all.shape[1]}-D actions x frameskip {k} != the model's {wm.action_dim}"
        )
    held_set = {int(e) for e in held}
    train_rows = [np.arange(full.episode_rows(p).start, full.episode_rows(p).stop) for p in range(full.num_episodes)
                  if int(full.episode_index[p]) not in held_set]  # fmt: skip
    box = full.columns["action"][np.concatenate(train_rows)] if train_rows else actions_all  # (n, A_env)
    codec, uses_state = wm.state_codec, wm.uses_state and states_all is not None
    rng = np.random.default_rng(cfg.seed)
    out = cfg.out or Path("runs") / time.strftime("eval-offline-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)

    def state_err(pred: torch.Tensor, true: np.ndarray, dims: np.ndarray | None = None) -> np.ndarray:
        """Mean absolute error over the dims (default all) (..., P) -> (...,), angles wrapped."""
        diff = codec.difference(pred.float(), torch.as_tensor(true))
        return (diff if dims is None else diff[..., torch.from_numpy(dims)]).mean(-1).numpy()

    read_dims = None if wm.readout is None else (wm.readout_trust > 0).cpu().numpy()  # (P,) the dims it reads
    readable = (
        read_dims is not None and bool(read_dims.any()) and _reads_predictions(wm) and states_all is not None
    )

    # -- open-loop prediction ---------------------------------------------------------------
    lat = {p: [] for p in PREDICTORS}
    st = {p: [] for p in PREDICTORS}
    dec = {p: [] for p in PREDICTORS}
    examples = []
    starts = _starts(ds, H * k, k, cfg.anchors, rng)
    for pos, t in tqdm(starts, desc="open-loop", disable=not cfg.progress, leave=False):
        idx = t + k * np.arange(-1, H + 1)  # t - k, t, t + k, ..., t + H k
        z = wm.encode(wm.dataset_frames(ds, pos, idx)).cpu()  # (H + 2, N, D)
        rows = ds.episode_rows(pos).start + idx
        s = None if states_all is None else states_all[rows]  # (H + 2, P)
        acts = torch.from_numpy(actions_all[rows[1] : rows[1] + H * k].reshape(1, H, -1))
        s0 = torch.from_numpy(s[1:2]) if uses_state else None
        pred, pstates = wm.rollout(z[1:2], s0, acts)  # (1, H, N, D), (1, H, P)
        h = torch.arange(1, H + 1, dtype=torch.float32)[:, None, None]
        guesses = {"model": pred[0].cpu(), "copy-last": z[1].expand(H, -1, -1),
                   "constant-velocity": z[1] + h * (z[1] - z[0])}  # fmt: skip
        true = z[2:]
        for p, g in guesses.items():
            lat[p].append((g - true).pow(2).mean(dim=(1, 2)).numpy())
            if readable:
                dec[p].append(state_err(_read(wm, g), s[2:], read_dims))
        if states_all is not None:
            v = torch.from_numpy(s[1] - s[0])
            st_guess = {"copy-last": torch.from_numpy(s[1]).expand(H, -1),
                        "constant-velocity": torch.from_numpy(s[1]) + h[:, 0] * v}  # fmt: skip
            if pstates is not None and wm.predictor.cfg.state_head:  # (without a head: copied or s + a)
                st_guess["model"] = pstates[0].cpu()
            for p, g in st_guess.items():
                st[p].append(state_err(g, s[2:]))
        if len(examples) < cfg.videos:
            examples.append((pos, t, s, None if pstates is None else pstates[0].cpu().numpy()))
    tables = {
        "latent error (mean squared)": lat,
        "proprio error (state head)": st,
        "read-out of the predicted frame": dec,
    }
    curves = {name: {p: np.mean(v, axis=0) for p, v in m.items() if v} for name, m in tables.items()}
    curves = {name: c for name, c in curves.items() if c}

    # -- planning toward recorded goals -----------------------------------------------------
    planning = None
    if cfg.plans:
        plan_fn, pcfg = make_planner("cem", H, cfg.samples, cfg.elites, cfg.iterations)
        low = torch.from_numpy(
            np.tile(box.min(0), k).astype(np.float32)
        )  # the training episodes' action range
        high = torch.from_numpy(np.tile(box.max(0), k).astype(np.float32))
        gen = torch.Generator().manual_seed(cfg.seed)
        errs = {"plan": [], "box centre": [], "random": []}
        final = {"plan": [], "start state": []}
        for pos, t in tqdm(_starts(ds, H * k, 0, cfg.plans, rng), desc="planning", disable=not cfg.progress,
                           leave=False):  # fmt: skip
            row = ds.episode_rows(pos).start + t
            frames = wm.dataset_frames(ds, pos, [t, t + H * k])  # the start and the goal
            s0 = torch.from_numpy(states_all[row : row + 1]) if uses_state else None
            gs, weight = None, 0.0
            if cfg.goal_state == "decoded" and wm.readout is not None and uses_state:
                z, read = wm.encode_and_read(frames)  # one encoder pass: features and the goal's state
                gs, weight = read[1], 3.0
            else:
                z = wm.encode(frames)
            cost = make_latent_goal_cost(wm, z[:1], s0, z[1], goal_state=gs, state_weight=weight,
                                         state_dims=wm.readout_trust if weight else None)  # fmt: skip
            res = plan_fn(cost, low, high, pcfg, generator=gen)
            recorded = actions_all[row : row + k].reshape(-1)
            errs["plan"].append(np.abs(res.actions[0].numpy() - recorded).mean())
            errs["box centre"].append(np.abs((low + high).numpy() / 2 - recorded).mean())
            rand = low + (high - low) * torch.rand(low.shape, generator=gen)
            errs["random"].append(np.abs(rand.numpy() - recorded).mean())
            if uses_state:
                _, ps = wm.rollout(z[:1], s0, res.actions[None])
                goal_s = states_all[row + H * k]
                final["plan"].append(float(state_err(ps[0, -1].cpu(), goal_s)))
                final["start state"].append(float(state_err(torch.from_numpy(states_all[row]), goal_s)))
        planning = {"first_block_error": {n: float(np.mean(v)) for n, v in errs.items()},
                    "final_state_error": {n: float(np.mean(v)) for n, v in final.items() if v}}  # fmt: skip

    # -- report -----------------------------------------------------------------------------
    beats = {name: bool(np.all(c["model"] < c["copy-last"])) for name, c in curves.items() if "model" in c}
    result = {"model": str(cfg.model), "data": str(data), "episodes": "held-out",
              "anchors": len(starts), "horizon": H, "frameskip": k,
              "open_loop": {n: {p: v.tolist() for p, v in c.items()} for n, c in curves.items()},
              "beats_copy_last": beats, "planning": planning}  # fmt: skip
    (out / "results.json").write_text(json.dumps(result, indent=2))
    md = _markdown(result)
    (out / "results.md").write_text(md + "\n")
    _plot(out / "horizons.png", curves, k)
    names = fmt.feature_names(ds.features.get("observation.state", {})) or []
    for i, (pos, t, s, ps) in enumerate(examples):
        if s is not None and ps is not None:
            frames = wm.dataset_frames(ds, pos, t + k * np.arange(0, H + 1))[..., :3]  # the first camera
            write_video(out / f"open_loop_{i}.mp4", _video_frames(frames, s[1:], ps, names), fps=2)
    print(md)
    print(f"[eval-offline] results, plots and videos in {out}")
    return result


def _reads_predictions(wm) -> bool:
    """Whether the read-out takes the features the predictor predicts (one embedding per frame, or
    an unpooled grid)."""
    return bool(wm.encoder.cfg.embed_dim) or wm.pool in (0, wm.encoder.cfg.grid)


def _read(wm, z: torch.Tensor) -> torch.Tensor:
    """The read-out's states for standardised predicted features (H, N, D) -> (H, P)."""
    raw = (z.to(wm.device) * wm.std + wm.mean).flatten(1)
    with torch.no_grad():
        return wm.state_codec.decode(wm.readout(raw)).cpu()


def _markdown(r: dict) -> str:
    H = r["horizon"]
    lines = [f"# {r['model']} on {r['data']} ({r['episodes']} episodes, {r['anchors']} starts, "
             f"h in model steps of {r['frameskip']} env steps)", ""]  # fmt: skip
    rows = [
        [f"{name}: {p}", *(f"{x:.4f}" for x in v)] for name, c in r["open_loop"].items() for p, v in c.items()
    ]
    lines.append(markdown_table(["measure", *(f"h={h}" for h in range(1, H + 1))], rows))
    for name, ok in r["beats_copy_last"].items():
        lines.append(f"\n{name}: the model beats copy-last at every horizon: {'yes' if ok else 'no'}")
    if r["planning"]:
        p = r["planning"]
        lines += ["", "Planning toward the recorded frame H model steps later (CEM):", ""]
        rows = [["first action block, mean abs error", *(f"{p['first_block_error'][n]:.4f}" for n in
                                                         ("plan", "box centre", "random"))]]  # fmt: skip
        header = ["measure", "plan", "box centre", "random"]
        lines.append(markdown_table(header, rows))
        if p["final_state_error"]:
            f = p["final_state_error"]
            lines += ["", f"predicted final proprio vs the recorded goal's: plan {f['plan']:.4f}, "
                          f"start state {f['start state']:.4f} (mean abs error)"]  # fmt: skip
    return "\n".join(lines)


def _plot(path: Path, curves: dict, k: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 3.4), squeeze=False)
    for ax, (name, c) in zip(axes[0], curves.items()):
        for p, v in c.items():
            ax.plot(np.arange(1, len(v) + 1), v, marker="o", label=p)
        ax.set(title=name, xlabel=f"horizon (model steps of {k} env steps)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _video_frames(frames: np.ndarray, recorded: np.ndarray, predicted: np.ndarray, names: list[str]):
    """Per model step: the recorded frame beside the recorded (solid) and predicted (dashed,
    from step 1) proprio so far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from worldmodel.eval.report import upscale

    H, P = predicted.shape
    for step in range(H + 1):
        fig, ax = plt.subplots(figsize=(3.2, 2.56), dpi=50)
        for d in range(P):
            line = ax.plot(
                np.arange(step + 1), recorded[: step + 1, d], label=names[d] if d < len(names) else f"[{d}]"
            )
            if step:
                ax.plot(np.arange(1, step + 1), predicted[:step, d], "--", color=line[0].get_color())
        ax.set_xlim(0, H)
        ax.set_ylim(
            float(min(recorded.min(), predicted.min())) - 0.1,
            float(max(recorded.max(), predicted.max())) + 0.1,
        )
        ax.legend(fontsize=5, loc="upper left")
        fig.canvas.draw()
        chart = np.asarray(fig.canvas.buffer_rgba())[..., :3]
        plt.close(fig)
        img = upscale(frames[step], max(1, chart.shape[0] // frames.shape[1]))
        h = max(img.shape[0], chart.shape[0])
        both = np.concatenate(
            [np.pad(a, ((0, h - a.shape[0]), (0, 0), (0, 0))) for a in (img, chart)], axis=1
        )
        yield both[: both.shape[0] // 2 * 2, : both.shape[1] // 2 * 2]
