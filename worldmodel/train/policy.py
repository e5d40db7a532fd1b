"""``wm train-policy``: fit a world model's goal-conditioned policy (the amortised planner).

    wm train-policy --model runs/joint-reacher                  # writes policy.* into the run
    wm eval --task reacher --model runs/joint-reacher --planner policy --rows model-latent

Every frame of the world model's training episodes is encoded once by the world model's
encoder (``WorldModel.encode``); a training row is (the features of frame t, those of a frame
g model steps later in the same episode, the proprio state at t) -> the model action recorded
at t (the ``frameskip`` env actions after it) [and the read-out's decoding of the goal frame's
proprio state, with ``goal_state``], g drawn uniformly from 1 to ``max_gap``
(hindsight goals). With ``labels="planner"`` the target is instead the first action block CEM
plans on this world model from frame t toward the goal frame (the evaluation's model-row cost:
the latent distance, plus the read-out's goal state with ``goal_state``), on ``plan_rows`` drawn
(frame, goal) pairs: the policy imitates the planner rather than the recorded actions, which
for exploration data reach a goal only on average. MSE on standardised actions, AdamW with a
cosine decay. The run's held-out episodes score it (the same labels on held-out pairs): the
held-out MSE against predicting the mean action (``policy.json``).

Legend: n rows, F flattened features (N * D), E encoded state dim, A model action dim.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm, trange

from worldmodel.eval.protocol import EvalConfig


@dataclass(frozen=True)
class TrainPolicyConfig:
    """Fit a goal-conditioned policy on a world model's latents; it is written into the run."""

    model: Path
    """world-model run directory (train-ac or train-joint); policy.safetensors and policy.json go there"""
    steps: int = 3000
    """optimiser steps"""
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-4
    hidden: int = 256
    """width of the policy's hidden layers"""
    depth: int = 3
    """hidden layers"""
    max_gap: int = 8
    """goals are drawn 1 to max_gap model steps after the frame"""
    use_state: bool = True
    """give the policy the proprio state (when the world model has one)"""
    goal_state: bool = False
    """also give it the goal frame's proprio state as the world model's read-out decodes it (the
    goal image is all a planner is given; needs a read-out)"""
    use_latent: bool = True
    """give the policy the current and goal frames' features; off: the proprio state and the
    read-out's goal state alone (needs --goal-state; for goals the read-out's state carries)"""
    labels: Literal["hindsight", "planner"] = "hindsight"
    """hindsight: the action block recorded after the frame; planner: the first action block CEM
    plans on this world model toward the goal frame (the eval's model-row cost)"""
    plan_rows: int = 3000
    """planner labels: (frame, goal) pairs labelled by CEM (a fifth as many more on held-out episodes);
    the labels are kept in the run (policy_labels_*.safetensors) and reused by a fit with the same
    label settings"""
    plan_samples: int = 100
    """planner labels: CEM samples per iteration"""
    plan_iterations: int = 10
    plan_elites: int = 10
    plan_horizon: int = EvalConfig.horizon
    """planner labels: model steps per plan (the eval's horizon)"""
    max_frames: int = 200_000
    """training frames encoded at most (whole episodes, in order)"""
    seed: int = 0
    device: str = "auto"
    """auto (CUDA when present, else CPU), cpu, cuda"""
    progress: bool = True


@torch.no_grad()
def encode_episodes(wm, ds, max_frames: int, progress: bool, decode: bool = False) -> tuple[list, ...]:
    """Per episode of ``ds`` (until ``max_frames``): features (n, F), proprio states (n, P), env
    actions (n, A_env) and, with ``decode``, the states the read-out reads off the frames (n, P)."""
    feats, states, actions, decoded, total = [], [], [], [], 0
    bar = tqdm(total=min(max_frames, ds.num_frames), desc="policy: encoding frames", unit="frame",
               disable=not progress, leave=False)  # fmt: skip
    for pos in range(ds.num_episodes):
        rows = ds.episode_rows(pos)
        n = rows.stop - rows.start
        chunks = [wm.dataset_frames(ds, pos, np.arange(s, min(s + 256, n))) for s in range(0, n, 256)]
        if decode:
            both = [wm.encode_and_read(c) for c in chunks]  # one encoder pass for features and states
            feats.append(torch.cat([z.flatten(1).cpu() for z, _ in both]))  # (n, F)
            decoded.append(torch.cat([s.cpu() for _, s in both]).numpy())  # (n, P)
        else:
            feats.append(torch.cat([wm.encode(c).flatten(1).cpu() for c in chunks]))  # (n, F)
        states.append(ds.columns["observation.state"][rows].astype(np.float32))
        actions.append(ds.columns["action"][rows].astype(np.float32))
        total += n
        bar.update(n)
        if total >= max_frames:
            break
    bar.close()
    return feats, states, actions, decoded


class HindsightRows:
    """(frame, later goal frame, state, goal's decoded state) -> model action rows drawn from
    encoded episodes."""

    def __init__(self, feats, states, actions, decoded, frameskip: int, max_gap: int, codec):
        self.k, self.max_gap = frameskip, max_gap
        self.z = torch.cat(feats)  # (n, F)
        self.raw_s = torch.from_numpy(np.concatenate(states))  # (n, P)
        self.raw_sd = torch.from_numpy(np.concatenate(decoded)).float() if decoded else None  # (n, P)
        self.s = codec.encode(self.raw_s)  # (n, E)
        self.sd = codec.encode(self.raw_sd) if decoded else None  # (n, E)
        self.a = torch.from_numpy(np.concatenate(actions))  # (n, A_env)
        starts = np.cumsum([0] + [len(f) for f in feats])
        anchors, room = [], []  # frames with at least one model step after them, and how many
        for b, e in itertools.pairwise(starts):
            t = np.arange(b, e - frameskip)
            anchors.append(t)
            room.append((e - 1 - t) // frameskip)
        self.anchors = torch.from_numpy(np.concatenate(anchors))
        self.room = torch.from_numpy(np.minimum(np.concatenate(room), max_gap))
        if not len(self.anchors):
            raise ValueError(f"no episode is longer than one model step ({frameskip} env steps)")

    def pairs(self, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """n random (frame, goal frame) row indices (n,), (n,): the goal 1 to max_gap model steps later."""
        i = torch.randint(0, len(self.anchors), (n,), generator=gen)
        t = self.anchors[i]
        g = 1 + (torch.rand(n, generator=gen) * self.room[i]).long().clamp_max(self.room[i] - 1)
        return t, t + g * self.k

    def draw(self, n: int, gen: torch.Generator) -> tuple[Tensor, ...]:
        """n random rows -> z (n, F), z_goal (n, F), states (n, E), the goal's decoded states (n, E)
        or None, model actions (n, k * A_env)."""
        t, goal = self.pairs(n, gen)
        acts = self.a[t[:, None] + torch.arange(self.k)].flatten(1)  # (n, k * A_env)
        return self.z[t], self.z[goal], self.s[t], None if self.sd is None else self.sd[goal], acts


def _fingerprint(wm) -> str:
    """A checksum of the world model's weights: labels planned on other weights are not reused."""
    with torch.no_grad():
        total = sum(float(p.double().abs().sum()) for p in wm.predictor.parameters())
        total += sum(float(p.double().abs().sum()) for p in wm.encoder.parameters())
    return f"{total:.15e}"


#: the settings planner labels depend on (besides the run's weights and the drawn pairs)
LABEL_SETTINGS = ("plan_samples", "plan_iterations", "plan_elites", "plan_horizon", "max_gap", "goal_state",
                  "max_frames")  # fmt: skip


class PlannerRows:
    """``n`` (frame, goal) pairs of ``rows`` labelled with the first action block CEM (``plan``)
    plans on the world model from the frame toward the goal; ``draw`` samples them with the rows'
    interface. With ``cache`` the labels are kept there under ``key`` (what else they depend on)
    and reused when the key matches."""

    def __init__(self, rows: HindsightRows, wm, n: int, plan, low: Tensor, high: Tensor, tokens: tuple[int, int],
                 seed: int, desc: str, cache: Path | None = None, key: dict[str, str] | None = None,
                 progress: bool = False):  # fmt: skip
        t, goal = rows.pairs(n, torch.Generator().manual_seed(seed))
        self.z, self.zg, self.s = rows.z[t], rows.z[goal], rows.s[t]
        self.sg = None if rows.sd is None else rows.sd[goal]
        key = (key or {}) | {"n": str(n), "seed": str(seed), "frames": str(len(rows.z))}
        if cache is not None and cache.exists():
            from safetensors import safe_open
            from safetensors.torch import load_file

            with safe_open(str(cache), "pt") as f:
                same = f.metadata() == key
            if same:
                self.a = load_file(str(cache))["labels"]  # (n, A)
                return
        self.a = self._label(rows, wm, t, goal, plan, low, high, tokens, seed, desc, progress)  # (n, A)
        if cache is not None:
            from safetensors.torch import save_file

            save_file({"labels": self.a.contiguous()}, str(cache), metadata=key)

    @staticmethod
    def _label(rows, wm, t, goal, plan, low, high, tokens, seed: int, desc: str, progress: bool) -> Tensor:
        from planners import plan_cem
        from worldmodel.world_model import make_latent_goal_cost

        weight = EvalConfig.state_weight if rows.raw_sd is not None else 0.0  # the model row's proprio term
        labels = []
        for j in trange(len(t), desc=f"policy: planner labels ({desc})", disable=not progress, leave=False):
            z0, zg = rows.z[t[j]].view(1, *tokens), rows.z[goal[j]].view(*tokens)  # (1, N, D), (N, D)
            cost = make_latent_goal_cost(
                wm, z0, rows.raw_s[t[j]][None] if wm.uses_state else None, zg,
                goal_state=rows.raw_sd[goal[j]] if weight else None, state_weight=weight,
                state_dims=wm.readout_trust if weight else None,
            )  # fmt: skip
            res = plan_cem(
                cost, low, high, plan, generator=torch.Generator().manual_seed(seed * 1_000_003 + j)
            )
            labels.append(res.actions[0].float())  # (A,) the block a re-planning controller executes
        return torch.stack(labels)  # (n, A)

    def draw(self, n: int, gen: torch.Generator) -> tuple[Tensor, ...]:
        """n rows drawn with replacement, as ``HindsightRows.draw``."""
        i = torch.randint(0, len(self.a), (n,), generator=gen)
        return self.z[i], self.zg[i], self.s[i], None if self.sg is None else self.sg[i], self.a[i]


def train_policy(cfg: TrainPolicyConfig) -> dict[str, float]:
    from safetensors.torch import save_file

    from worldmodel.data import LeRobotDataset
    from worldmodel.policy import GoalPolicy, PolicyConfig
    from worldmodel.train.config import load_config_dict, to_plain
    from worldmodel.train.runtime import resolve_device
    from worldmodel.world_model import POLICY_FILES, WorldModel

    if min(cfg.steps, cfg.batch_size, cfg.max_gap, cfg.max_frames, cfg.plan_rows, cfg.plan_horizon) < 1:
        raise ValueError("steps, batch_size, max_gap, max_frames, plan_rows and plan_horizon must be >= 1")
    if cfg.labels not in ("hindsight", "planner"):
        raise ValueError(f"labels {cfg.labels!r}: use hindsight or planner")
    if not cfg.use_latent and not cfg.goal_state:
        raise ValueError("--no-use-latent needs --goal-state (without features the goal is the read-out's)")
    plan = None
    if cfg.labels == "planner":
        from planners import CEMConfig

        plan = CEMConfig(horizon=cfg.plan_horizon, samples=cfg.plan_samples, elites=cfg.plan_elites,
                         iterations=cfg.plan_iterations)  # a bad budget raises here, before any encoding  # fmt: skip
    device = resolve_device(cfg.device)
    wm = WorldModel.load(cfg.model, device)
    saved = load_config_dict(cfg.model)
    data, held = Path(saved["run"]["data"]), {int(e) for e in saved["held_out_episodes"]}
    if not data.exists():
        raise FileNotFoundError(f"{cfg.model} was trained on {data}, which is not there")
    full = LeRobotDataset(data, check_videos=False)
    train_eps = [int(e) for e in full.episode_index if int(e) not in held]
    use_state = cfg.use_state and wm.uses_state
    if cfg.goal_state and (not use_state or wm.readout is None):
        why = "--no-use-state" if wm.uses_state and not cfg.use_state else (
            f"{cfg.model} has {'no read-out' if wm.uses_state else 'no proprio states'}")  # fmt: skip
        raise ValueError(f"--goal-state needs proprio states and a read-out: {why}")

    # -- data -----------------------------------------------------------------------------
    rows = {}
    for name, eps in (("train", train_eps), ("held_out", sorted(held))):
        if eps:
            ds = LeRobotDataset(data, episodes=eps, check_videos=False)
            enc = encode_episodes(wm, ds, cfg.max_frames, cfg.progress, decode=cfg.goal_state)
            rows[name] = HindsightRows(*enc, wm.frameskip, cfg.max_gap, wm.state_codec)
    if "train" not in rows:
        raise ValueError(f"{cfg.model}: no training episodes left after the held-out ones")
    if cfg.labels == "planner":
        k, box = wm.frameskip, rows["train"].a  # the training episodes' action range, per env action
        low, high = box.min(0).values.repeat(k), box.max(0).values.repeat(k)  # (A,)
        tokens = tuple(wm.encode(wm.dataset_frames(ds, 0, np.arange(1))).shape[1:])  # (N, D)
        # what the labels depend on besides the pairs: kept labels are reused only when it matches
        key = {f: str(getattr(cfg, f)) for f in LABEL_SETTINGS} | {"weights": _fingerprint(wm)}
        rows = {name: PlannerRows(r, wm, cfg.plan_rows if name == "train" else max(1, cfg.plan_rows // 5), plan,
                                  low, high, tokens, cfg.seed + (name != "train"), name,
                                  cache=Path(cfg.model) / f"policy_labels_{name}.safetensors", key=key,
                                  progress=cfg.progress)
                for name, r in rows.items()}  # fmt: skip
    train = rows["train"]

    # -- model ------------------------------------------------------------------------------
    gen = torch.Generator().manual_seed(cfg.seed)
    pcfg = PolicyConfig(feat_dim=train.z.shape[1], action_dim=wm.action_dim,
                        state_dim=train.s.shape[1] if use_state else 0, goal_state=cfg.goal_state,
                        latent=cfg.use_latent, hidden=cfg.hidden, depth=cfg.depth)  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        policy = GoalPolicy(pcfg)
    z, zg, s, sg, a = train.draw(min(50_000, 20 * len(train.z)), gen)
    x = policy.inputs(z, zg, s if use_state else None, sg)
    policy.x_mean.copy_(x.mean(0))
    policy.x_std.copy_(x.std(0) + 1e-4)
    policy.a_mean.copy_(a.mean(0))
    policy.a_std.copy_(a.std(0) + 1e-4)
    policy = policy.to(device)
    opt = torch.optim.AdamW(policy.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def loss_of(z, zg, s, sg, a) -> Tensor:
        z, zg, s, a = (t.to(device) for t in (z, zg, s, a))
        pred = policy(z, zg, s if use_state else None, None if sg is None else sg.to(device))
        return ((pred - a) / policy.a_std).pow(2).mean()

    # -- loop -------------------------------------------------------------------------------
    bar = trange(cfg.steps, desc="train-policy", disable=not cfg.progress, leave=False)
    recent: list[float] = []  # the last 100 steps' losses
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        loss = loss_of(*train.draw(cfg.batch_size, gen))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        recent = [*recent[-99:], loss.item()]
        if step % 100 == 0:
            bar.set_postfix(loss=f"{np.mean(recent):.4f}")
    policy.eval().requires_grad_(False)

    # -- score and export -------------------------------------------------------------------
    metrics = {"train_loss": float(np.mean(recent))}
    if "held_out" in rows:
        z, zg, s, sg, a = rows["held_out"].draw(20_000, torch.Generator().manual_seed(cfg.seed + 1))
        with torch.no_grad():
            metrics["held_out_loss"] = float(loss_of(z, zg, s, sg, a))
        # predicting the training mean action, on the same scale: the loss a policy has to beat
        metrics["held_out_mean_action_loss"] = float(
            ((a.to(device) - policy.a_mean) / policy.a_std).pow(2).mean()
        )
    weights, spec = (Path(cfg.model) / f for f in POLICY_FILES)
    save_file({k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}, str(weights))
    spec.write_text(
        json.dumps({"policy": asdict(pcfg), "train": to_plain(cfg), "metrics": metrics}, indent=2)
    )
    return metrics
