"""The world model: an encoder + an action-conditioned predictor, and its goal cost.

``WorldModel.load(run)`` takes a ``train-ac`` run directory (which names its frozen encoder's
run) or a ``train-joint`` run (its own encoder run, the encoder trained with the predictor) and
offers ``encode(frames)``, ``rollout(context, actions)`` and ``read_state(frames)``; planners
receive only the cost callable from ``make_latent_goal_cost``. ``load_encoder`` /
``save_encoder`` read and write an encoder run's exported encoder (``encoder.safetensors`` +
``encoder.json``).

The cost of a candidate plan is the distance between the predicted embedding at the end of the
plan and the goal image's embedding (standardised features; mean over tokens and dims, L1 or
squared L2), optionally plus ``state_weight`` x the L1 distance between the predicted proprio
state and a goal proprio state (when one is known, e.g. recorded with a dataset goal frame).

States enter and leave in the env's units; inside, the predictor and the state read-out see the
``StateCodec``'s encoding (joint angles as (cos, sin)), and the proprio term wraps angle errors.

Legend: S candidates, H horizon (model steps), C context frames, N tokens, D width,
A model action dim (k env actions), P state dim.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import Tensor

from worldmodel.encoder import EncoderConfig, VideoEncoder, encode_frames, pool_tokens, to_float_frames
from worldmodel.predictor import ActionConditionedPredictor, PredictorConfig
from worldmodel.readout.codec import StateCodec

CostFn = Callable[[Tensor], Tensor]

#: the goal-state read-out's weights in a train-ac run (runs made before the name: state_probe)
READOUT_FILE = "readout.safetensors"


def save_encoder(weights: dict[str, Tensor], cfg: EncoderConfig, run: Path | str) -> None:
    """Write an encoder run's exported encoder: ``encoder.safetensors`` + ``encoder.json`` (its config)."""
    from dataclasses import asdict

    from safetensors.torch import save_file

    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in weights.items()}, str(run / "encoder.safetensors"))
    (run / "encoder.json").write_text(json.dumps(asdict(cfg), indent=2))


def load_encoder(run: Path | str, device: str | torch.device = "cpu") -> VideoEncoder:
    """The exported encoder of an encoder run (eval mode, no grad)."""
    run = Path(run)
    for f in ("encoder.safetensors", "encoder.json"):
        if not (run / f).exists():
            raise FileNotFoundError(f"{run / f} missing: the run did not finish (rerun it to resume)")
    enc = VideoEncoder(EncoderConfig(**json.loads((run / "encoder.json").read_text())))
    enc.load_state_dict(load_file(str(run / "encoder.safetensors")))
    return enc.to(device).eval().requires_grad_(False)


class WorldModel:
    def __init__(
        self,
        encoder,
        predictor: ActionConditionedPredictor,
        mean: Tensor,
        std: Tensor,
        pool: int,
        frameskip: int,
        readout=None,
        state_codec: StateCodec | None = None,
        policy=None,
        image_keys: tuple[str, ...] = (),
    ):
        self.encoder, self.predictor = encoder.eval(), predictor.eval()
        self.mean, self.std = mean, std
        self.pool, self.frameskip = pool, frameskip
        self.readout = readout  # the goal-state read-out (worldmodel.readout), or None
        self.policy = policy  # the goal-conditioned policy (worldmodel.policy.GoalPolicy), or None
        self.state_codec = state_codec or StateCodec(predictor.cfg.state_dim)
        self.device = next(predictor.parameters()).device
        self.bf16 = False  # set True on CUDA: encoder and rollouts under bf16 autocast
        self.image_keys = tuple(image_keys)  # the dataset cameras it sees, in order (empty: the first)

    def _autocast(self):
        import contextlib

        if self.bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @classmethod
    def load(cls, run: Path | str, device: str | torch.device = "cpu") -> WorldModel:
        run = Path(run)
        spec_path = run / "world_model.json"
        if not spec_path.exists():
            raise FileNotFoundError(
                f"{spec_path} missing: the train-ac run did not finish (rerun to resume it)"
            )
        spec = json.loads(spec_path.read_text())
        encoder = load_encoder(spec["encoder_run"], device)
        predictor = ActionConditionedPredictor(PredictorConfig(**spec["predictor"]))
        predictor.load_state_dict(load_file(str(run / "predictor.safetensors")))
        predictor = predictor.to(device).requires_grad_(False)
        mean = torch.tensor(spec["mean"], dtype=torch.float32, device=device)
        std = torch.tensor(spec["std"], dtype=torch.float32, device=device)
        angles = tuple(spec.get("state_angles", ()))
        codec = StateCodec(spec.get("state_dim", predictor.cfg.state_dim - len(angles)), angles)
        readout = None
        files = [run / READOUT_FILE, run / "state_probe.safetensors"]
        found = [f for f in files if f.exists()]
        if found:
            from worldmodel.readout.fit import readout_from_tensors

            readout = readout_from_tensors(spec.get("readout") or "ridge", load_file(str(found[0])), device)
        policy = load_policy(run, device)
        if policy is not None and (policy.cfg.action_dim, policy.cfg.state_dim) != (
            predictor.cfg.action_dim, policy.cfg.state_dim and codec.encoded_dim):  # fmt: skip
            raise ValueError(f"{run}: its policy was trained for another world model (its action or state size "
                             "differs): rerun wm train-policy")  # fmt: skip
        pool, skip, keys = spec["pool"], spec["frameskip"], tuple(spec.get("image_keys") or ())
        return cls(encoder, predictor, mean, std, pool, skip, readout, codec, policy, keys)

    @classmethod
    def from_modules(cls, encoder, predictor: ActionConditionedPredictor, frameskip: int = 1) -> WorldModel:
        """A world model on plain layer-normed features (no standardisation), e.g. an official
        V-JEPA 2 encoder + AC predictor: plan with ``metric="l1"`` as V-JEPA 2-AC does."""
        device = next(predictor.parameters()).device
        zero, one = torch.zeros((), device=device), torch.ones((), device=device)
        return cls(encoder, predictor, zero, one, predictor.cfg.pool, frameskip)

    @property
    def action_dim(self) -> int:
        """Model action dim: ``frameskip`` env actions concatenated."""
        return self.predictor.cfg.action_dim

    @property
    def uses_state(self) -> bool:
        return self.predictor.cfg.state_dim > 0

    def _frames(self, frames: np.ndarray | Tensor) -> Tensor:
        """(B, H, W, 3) uint8 arrays/tensors or (B, C, H, W) float in [0, 1] -> (B, C, H, W) float on the device."""
        if isinstance(frames, np.ndarray):
            frames = torch.from_numpy(np.ascontiguousarray(frames))
        if frames.dtype == torch.uint8:
            frames = to_float_frames(frames)
        return frames.to(self.device)

    @torch.no_grad()
    def encode(self, frames: np.ndarray | Tensor) -> Tensor:
        """Frames (B, H, W, 3) uint8 (as envs and datasets give them; (B, H, W, 3K) for a model of K
        cameras, ``dataset_frames``) or (B, C, H, W) float in [0, 1] -> standardised pooled
        features (B, N, D)."""
        frames = self._frames(frames)
        with self._autocast():
            z = encode_frames(self.encoder, frames, self.pool).float()
        return (z - self.mean) / self.std

    def dataset_frames(self, dataset, pos: int, frame_indices) -> np.ndarray:
        """The frames this model sees of a dataset's episode ``pos``: its cameras stacked along the
        channels -> (n, H, W, 3K), as ``encode`` takes them."""
        keys = self.image_keys or tuple(dataset.video_keys[:1])
        missing = [k for k in keys if k not in dataset.video_keys]
        if missing:
            raise ValueError(f"{dataset.root} has no camera {missing}; the world model sees {list(keys)}")
        return dataset.camera_frames(keys, pos, frame_indices)

    @property
    def readout_trust(self) -> Tensor | None:
        """(P,) how much each proprio dim read out of a frame can be trusted, in [0, 1] (the read-out's
        held-out R^2, zero below its threshold); None without a read-out. No frame needed."""
        if self.readout is None:
            return None
        return self.state_codec.raw_weights(self.readout.dim_weights)

    @torch.no_grad()
    def read_state(self, frames: np.ndarray | Tensor) -> tuple[Tensor, Tensor]:
        """The proprio state a frame shows, by the goal-state read-out: frames as in ``encode`` ->
        (states (B, P), per-dimension trust weights (P,) in [0, 1])."""
        return self.encode_and_read(frames)[1], self.readout_trust

    @torch.no_grad()
    def encode_and_read(self, frames: np.ndarray | Tensor) -> tuple[Tensor, Tensor]:
        """``encode`` and ``read_state``'s states from one encoder pass: frames as in ``encode`` ->
        (standardised pooled features (B, N, D), states (B, P))."""
        if self.readout is None:
            raise ValueError("this world model has no state read-out (train it with proprio states)")
        full = encode_frames(self.encoder, self._frames(frames), 0)  # (B, grid*grid, D) or (B, 1, E)
        z = full if self.encoder.cfg.embed_dim else pool_tokens(full, self.encoder.cfg.grid, self.pool)
        return (z - self.mean) / self.std, self.state_codec.decode(self.readout(full.flatten(1)))

    @torch.no_grad()
    def rollout(
        self, z0: Tensor, states0: Tensor | None, actions: Tensor, past_actions: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """z0 (C, N, D), states0 (C, P), actions (S, H, A) -> predicted (S, H, N, D), states (S, H, P)."""
        s0 = self.state_codec.encode(states0) if self.uses_state and states0 is not None else None
        with self._autocast():
            z, s = self.predictor.rollout(z0, s0, actions, past_actions)
        return z.float(), (None if s is None else self.state_codec.decode(s.float()))

    @torch.no_grad()
    def propose(
        self, z0: Tensor, states0: Tensor | None, z_goal: Tensor, horizon: int, past_actions: Tensor | None = None,
        goal_state: Tensor | None = None,
    ) -> Tensor:  # fmt: skip
        """The policy's plan: z0 (C, N, D), states0 (C, P), z_goal (N, D), goal_state (P,) (for a
        policy trained with goal states: the read-out's decoding of the goal image) -> actions (L, A).

        It acts on the last context frame, the predictor predicts the frame that action leads to,
        and it acts again from there, ``horizon`` times (one rolled-out candidate)."""
        if self.policy is None:
            raise ValueError(
                "this world model has no goal-conditioned policy: train one with wm train-policy"
            )
        z0, z_goal = z0.to(self.device), z_goal.to(self.device)
        states0 = None if states0 is None else states0.to(self.device, torch.float32)
        with_state = bool(self.policy.cfg.state_dim) and states0 is not None
        z, s = z0[-1], (states0[-1] if with_state else None)  # (N, D), (P,)
        goal = z_goal.flatten()[None]  # (1, F)
        if goal.shape[1] != self.policy.cfg.feat_dim:
            raise ValueError(f"the policy takes {self.policy.cfg.feat_dim} features per frame, this world model "
                             f"gives {goal.shape[1]}: rerun wm train-policy")  # fmt: skip
        enc_goal = None
        if self.policy.cfg.goal_state and goal_state is not None:
            enc_goal = self.state_codec.encode(goal_state.to(self.device, torch.float32)[None])  # (1, E)
        acts: list[Tensor] = []
        for h in range(horizon):
            enc = self.state_codec.encode(s[None]) if s is not None else None  # (1, E)
            acts.append(self.policy(z.flatten()[None], goal, enc, enc_goal)[0])  # (A,)
            if h + 1 < horizon:
                pred, states = self.rollout(
                    z0, states0, torch.stack(acts)[None], past_actions
                )  # (1, h+1, N, D)
                z, s = pred[0, -1], (states[0, -1] if with_state and states is not None else None)
        return torch.stack(acts)  # (L, A)

    @staticmethod
    def distance(pred: Tensor, goal: Tensor, metric: str = "l2") -> Tensor:
        """pred (..., N, D), goal (N, D) -> (...,): mean over tokens and dims (e.g. (S, N, D) -> (S,))."""
        diff = pred - goal
        if metric == "l1":
            return diff.abs().mean(dim=(-2, -1))
        if metric == "l2":
            return diff.pow(2).mean(dim=(-2, -1))
        raise ValueError(f"unknown metric {metric!r}; use 'l1' or 'l2'")


#: which predicted steps the planning cost scores (``make_latent_goal_cost``'s ``steps``)
COST_STEPS = ("final", "all")


def make_latent_goal_cost(
    model: WorldModel, z0: Tensor, states0: Tensor | None, z_goal: Tensor, *, metric: str = "l2",
    goal_state: Tensor | None = None, state_weight: float = 0.0, past_actions: Tensor | None = None,
    state_dims: Tensor | None = None, steps: str = "final", policy_goal_state: Tensor | None = None,
) -> CostFn:  # fmt: skip
    """The planner's cost: actions (S, H, A) -> (S,), lower is better.

    z0 (C, N, D) context features and states0 (C, P) of the current observation(s), z_goal (N, D)
    the goal image's features. With the model's goal-conditioned policy, the cost carries
    ``cost.proposal(L) -> (L, A)``: the policy's plan (``WorldModel.propose``; ``policy_goal_state``
    (P,) for a policy trained with goal states), which the policy planners start from. ``goal_state`` (P,) with ``state_weight`` > 0 adds a proprio term:
    the L1 distance of the predicted final state to it, per dimension weighted by ``state_dims``
    (P,) (default all 1; e.g. the state read-out's trust weights for a goal state decoded from the
    goal image); with ``steps="all"`` both terms are averaged over the plan's steps. ``steps`` final: the distance of the plan's last predicted step; all: the mean
    over its H predicted steps (a plan that reaches the goal early and stays there is preferred to
    one that only passes through it at the end).
    """
    if steps not in COST_STEPS:
        raise ValueError(f"unknown cost steps {steps!r}; use one of {', '.join(COST_STEPS)}")
    if state_weight and (goal_state is None or not model.uses_state):
        raise ValueError("a proprio term needs goal_state and a predictor trained with states")
    z0, z_goal = z0.to(model.device), z_goal.to(model.device)
    states0, goal_state, state_dims, past_actions = (
        None if t is None else t.to(model.device, torch.float32)
        for t in (states0, goal_state, state_dims, past_actions)
    )

    def cost(actions: Tensor) -> Tensor:
        acts = actions.to(model.device, torch.float32)
        pred, states = model.rollout(z0, states0, acts, past_actions)  # (S, H, N, D), (S, H, P)
        if steps == "final":
            pred, states = pred[:, -1:], (None if states is None else states[:, -1:])
        c = model.distance(pred, z_goal, metric)  # (S, H') over the scored steps
        if state_weight:
            w = torch.ones_like(goal_state) if state_dims is None else state_dims
            err = model.state_codec.difference(states, goal_state)  # (S, H', P), angles wrapped
            c = c + state_weight * (err * w).sum(dim=-1) / w.sum().clamp_min(1e-8)
        return c.mean(dim=1).to(actions.device, actions.dtype)

    if model.policy is not None:  # the amortised guess the policy planners start from (planners.policy)

        def proposal(horizon: int) -> Tensor:
            return model.propose(z0, states0, z_goal, horizon, past_actions, policy_goal_state).cpu()

        cost.proposal = proposal
    return cost


#: a world-model run's goal-conditioned policy (``wm train-policy``)
POLICY_FILES = ("policy.safetensors", "policy.json")


def load_policy(run: Path | str, device: str | torch.device = "cpu"):
    """The run's ``GoalPolicy`` (eval mode, no grad), or None when it has none."""
    from worldmodel.policy import GoalPolicy, PolicyConfig

    weights, spec = (Path(run) / f for f in POLICY_FILES)
    if not weights.exists():
        return None
    if not spec.exists():
        raise FileNotFoundError(f"{spec} missing beside {weights.name}: rerun wm train-policy")
    policy = GoalPolicy(PolicyConfig(**json.loads(spec.read_text())["policy"]))
    policy.load_state_dict(load_file(str(weights)))
    return policy.to(device).eval().requires_grad_(False)
