"""Training the action-conditioned predictor on a frozen encoder's features.

    wm train-ac --data data/pointmass --encoder runs/enc-pm --out runs/ac-pm
    wm train-ac --data data/pointmass --encoder runs/enc-pm --out runs/ac-pm --preset tiny --loop.steps 20
    python -c "from worldmodel.train.predictor import TrainACConfig, train_ac; train_ac(TrainACConfig(...))"

Features are computed once (``<out>/features`` unless ``--features`` points elsewhere) and
reused. Loss: L1 teacher forcing (every frame predicts the next from true inputs) plus an L1
multi-step rollout loss (the model is fed its own predictions for ``rollout_steps`` steps and
scored against the true future features, never against its input), plus an L1 loss on the
predicted next proprio states (teacher-forced and along the rollout: the planner's proprio term
scores the rolled-out state). The run directory holds the resolved config, metrics, a
resumable checkpoint and, at the end, ``predictor.safetensors`` + ``world_model.json``: what
``WorldModel.load`` needs (with the encoder run it points to).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch.nn.parallel import DistributedDataParallel

from worldmodel.data import DatasetError, LeRobotDataset
from worldmodel.data.features import FeatureClips, FeatureStore
from worldmodel.data.splits import HELD_OUT, split_episodes
from worldmodel.predictor import ActionConditionedPredictor, PredictorConfig
from worldmodel.readout.codec import StateCodec
from worldmodel.readout.fit import (
    fit_feature_readout,
    fit_goal_readout,
    readout_from_tensors,
    readout_kind,
    readout_positions,
    readout_rows,
)
from worldmodel.train.checkpoint import load_checkpoint, resume_optimizer
from worldmodel.train.config import LoopConfig, OptimConfig, load_config_dict, to_plain
from worldmodel.train.logger import RunLogger
from worldmodel.train.loop import adamw, compiled, run_training, split_decay
from worldmodel.train.parallel import full_state, use_fsdp, wrap
from worldmodel.train.rundir import open_run
from worldmodel.train.runtime import Runtime, training_process
from worldmodel.train.sampling import StepBatchSampler
from worldmodel.world_model import READOUT_FILE, load_encoder

PredictorPreset = Literal["tiny", "cpu-small", "cpu", "gpu", "vjepa2-ac"]


@dataclass(frozen=True)
class PredictorSize:
    dim: int = 128
    depth: int = 4
    heads: int = 4
    residual: bool = True

    @classmethod
    def preset(cls, name: str) -> PredictorSize:
        """The size of a ``PredictorPreset`` by name."""
        sizes = {"tiny": cls(dim=32, depth=1, heads=2), "cpu": cls(), "cpu-small": cls(dim=64, depth=3, heads=4),
                 "gpu": cls(dim=512, depth=12, heads=8), "vjepa2-ac": cls(dim=1024, depth=24, heads=16)}  # fmt: skip
        if name not in sizes:
            raise ValueError(
                f"unknown predictor preset {name!r}; choose one of {list(PredictorPreset.__args__)}"
            )
        return sizes[name]


@dataclass(frozen=True)
class TrainACConfig:
    """Train the action-conditioned predictor on a frozen encoder's features."""

    data: Path
    """LeRobot dataset directory with actions and proprio states"""
    encoder: Path
    """pretraining run directory (its exported encoder is frozen)"""
    out: Path = Path("runs/ac")
    """run directory (reused to resume)"""
    features: Path | None = None
    """where the encoded features are stored (default <out>/features); reused when present"""
    image_keys: tuple[str, ...] = ()
    """the cameras the predictor sees, in this order (default: the dataset's first); several (of one
    frame size) are each encoded by the frozen encoder and their tokens laid side by side"""
    preset: Literal[PredictorPreset, "custom"] = "cpu"
    """predictor size; custom uses --size"""
    size: PredictorSize = field(default_factory=PredictorSize)
    pool: int = 4
    """pool the encoder's patch grid to pool x pool tokens (0: no pooling)"""
    frameskip: int = 5
    """env steps per model step (the action block)"""
    frames: int = 6
    """frames per training sequence"""
    rollout_steps: int | None = None
    """steps of the rollout loss (<= frames - 1; default frames - 1, the planning horizon at the
    default 6 frames)"""
    use_state: bool = True
    """proprio state tokens (and a next-state head)"""
    state_angles: tuple[int, ...] | None = None
    """proprio dims that are angles in radians, seen by the model as (cos, sin) (default: the
    task's, when the dataset's robot type is one of our tasks; none otherwise)"""
    readout: Literal["auto", "mlp", "ridge"] = "auto"
    """the goal-state read-out from a frame's features: ridge, an MLP, or auto: whichever reads
    held-out frames better"""
    readout_frames: int = 40_000
    """training frames the goal read-out is fitted on (whole random episodes; fewer where their
    features would pass the read-out's memory cap)"""
    readout_steps: int = 6000
    """optimiser steps of the MLP read-out's fit"""
    tf_weight: float = 1.0
    rollout_weight: float = 1.0
    state_weight: float = 1.0
    """weight of the next-state losses (teacher-forced and along the rollout)"""
    readout_weight: float = 0.0
    """weight of a loss on the state read out of the rolled-out features by a frozen read-out
    fitted on true stored features before training: keeps predictions where a read-out fitted on
    true features can read them (0: off)"""
    held_out: float = HELD_OUT
    """fraction of episodes held out (the encoder run's held-out episodes when it used this dataset)"""
    init_official: Path | None = None
    """fine-tune an official V-JEPA 2-AC predictor: its checkpoint file (sets the predictor's shape)"""
    official_heads: int = 16
    """attention heads of the official predictor (not recorded in its weights)"""
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=10_000, batch_size=64, eval_every=500))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, weight_decay=0.01))


def predictor_config(
    cfg: TrainACConfig, enc_dim: int, grid: int, action_dim: int, state_dim: int, cameras: int = 1
) -> PredictorConfig:
    if cfg.init_official is not None:
        if cameras > 1:
            raise ValueError(f"--init-official: the official predictor sees one camera, not {cameras}")
        from worldmodel.official import ac_config_from_state, load_official_file

        pcfg = ac_config_from_state(
            load_official_file(cfg.init_official)["predictor"], cfg.official_heads, grid
        )
        if (pcfg.enc_dim, pcfg.action_dim, pcfg.state_dim) != (
            enc_dim,
            cfg.frameskip * action_dim,
            state_dim,
        ):
            raise ValueError(
                f"{cfg.init_official}: the official predictor takes {pcfg.enc_dim}-wide features, {pcfg.action_dim}-D "
                f"actions and {pcfg.state_dim}-D states; this run has {enc_dim}, {cfg.frameskip * action_dim} "
                f"(frameskip {cfg.frameskip} x {action_dim}) and {state_dim}"
            )
        return pcfg
    size = cfg.size if cfg.preset == "custom" else PredictorSize.preset(cfg.preset)
    return PredictorConfig(
        enc_dim=enc_dim, grid=grid, pool=cfg.pool, action_dim=cfg.frameskip * action_dim,
        state_dim=state_dim if cfg.use_state else 0, dim=size.dim, depth=size.depth, heads=size.heads,
        residual=size.residual, cameras=cameras,
    )  # fmt: skip


def sequence_loss(
    model, z, actions, states, cfg: TrainACConfig, readout=None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """z (B, T, N, D), actions (B, T, A), states (B, T, P) (encoded) -> weighted loss and its
    parts (detached); ``readout`` (frozen, features (B, N*D) -> encoded states) for
    ``cfg.readout_weight``. The teacher-forced pass skips the last frame (its prediction has no
    target) and records the first frame's keys and values, so the rollout goes on from its first
    prediction rather than computing it again: the same loss as a full pass and a separate rollout."""
    net = model.module if isinstance(model, DistributedDataParallel) else model  # DDP: same graph
    steps = z.shape[1] - 1 if cfg.rollout_steps is None else cfg.rollout_steps
    s_in = states if cfg.use_state else None
    pred_z, pred_s, roll_z, roll_s = net.predict_and_unroll(
        z, actions[:, :-1], s_in, steps if cfg.rollout_weight > 0 else 0, forward=model
    )
    tf = (pred_z - z[:, 1:]).abs().mean()
    parts = {"tf": tf}
    loss = cfg.tf_weight * tf
    if pred_s is not None:
        st = (pred_s - states[:, 1:]).abs().mean()
        parts["state"] = st
        loss = loss + cfg.state_weight * st
    if roll_z is not None:  # the model fed its own predictions, scored against the true future
        R = roll_z.shape[1]
        ro = (roll_z - z[:, 1 : R + 1]).abs().mean()
        parts["rollout"] = ro
        loss = loss + cfg.rollout_weight * ro
        if pred_s is not None and roll_s is not None:  # the predicted states fed back, too
            ro_s = (roll_s - states[:, 1 : R + 1]).abs().mean()
            parts["rollout_state"] = ro_s
            loss = loss + cfg.rollout_weight * cfg.state_weight * ro_s
        if readout is not None and cfg.readout_weight > 0:  # the rolled-out features stay readable
            w = readout.dim_weights  # (P,) trust: dims the read-out cannot read weigh 0
            decoded = readout(roll_z.flatten(2).flatten(0, 1)).view(*roll_z.shape[:2], -1)  # (B, R, P)
            err = ((decoded - states[:, 1 : R + 1]).abs() * w).sum(-1).mean() / w.sum().clamp_min(1e-8)
            parts["readout"] = err
            loss = loss + cfg.readout_weight * err
    return loss, {k: v.detach() for k, v in parts.items()}


def state_codec(cfg, full: LeRobotDataset) -> StateCodec:
    """The run's state encoding: ``cfg.state_angles``, or the task's angle dims by robot type."""
    angles = cfg.state_angles
    if angles is None:
        from envs.registration import task_angle_dims

        angles = task_angle_dims(full.info.get("robot_type"))
    return StateCodec(full.columns["observation.state"].shape[1], tuple(angles))


def held_out_episodes(cfg: TrainACConfig, full: LeRobotDataset) -> list[int]:
    return inherited_held_out(cfg.encoder, cfg.data, full, cfg.held_out, cfg.loop.seed)


def inherited_held_out(
    source: Path | None, data: Path, full: LeRobotDataset, held_out: float, seed: int
) -> list[int]:
    """The held-out episodes of the run ``source`` when it trained on ``data``, else a fresh split."""
    if source is not None:
        try:
            saved = load_config_dict(source)
            if Path(saved["run"]["data"]).resolve() == Path(data).resolve():
                return [int(e) for e in saved["held_out_episodes"]]
        except (FileNotFoundError, KeyError):
            pass
    return split_episodes(full.episode_index, held_out, seed=seed)[1]


def train_ac(cfg: TrainACConfig) -> dict[str, float]:
    """Train (or resume) the predictor; returns the final metrics."""
    with training_process(cfg.loop.device, cfg.loop.precision, cfg.loop.threads) as rt:
        return _train(cfg, rt)


def _train(cfg: TrainACConfig, rt: Runtime) -> dict[str, float]:
    # -- setup ----------------------------------------------------------------------------
    loop = cfg.loop
    if cfg.rollout_steps is not None and cfg.rollout_steps > cfg.frames - 1:
        raise ValueError(f"rollout_steps={cfg.rollout_steps} needs frames >= {cfg.rollout_steps + 1}")
    if cfg.readout_frames < 1 or cfg.readout_steps < 1:
        raise ValueError(f"readout_frames and readout_steps must be >= 1, got {cfg.readout_frames} and "
                         f"{cfg.readout_steps}")  # fmt: skip
    full = LeRobotDataset(cfg.data)
    if not full.num_episodes:
        raise DatasetError(f"{full.info_path}: the dataset holds no episodes")
    for key in ("action", "observation.state"):
        if key not in full.columns:
            raise ValueError(f"{cfg.data} has no {key!r} column: the predictor needs actions and states")
    held = held_out_episodes(cfg, full)
    train_eps = [int(e) for e in full.episode_index if int(e) not in set(held)]
    encoder = load_encoder(cfg.encoder, rt.device)
    run = Path(cfg.out)
    feat_dir = Path(cfg.features) if cfg.features else run / "features"
    codec = state_codec(cfg, full)
    cameras = full.cameras(cfg.image_keys)
    pcfg = predictor_config(cfg, encoder.cfg.dim, encoder.cfg.grid, full.columns["action"].shape[1],
                            codec.encoded_dim, cameras=len(cameras))  # fmt: skip
    resume = open_run(run, {"run": cfg, "predictor": pcfg, "held_out_episodes": held, "state_angles": codec.angles},
                      force_new=loop.force_new, main=rt.main)  # fmt: skip
    train = LeRobotDataset(cfg.data, episodes=train_eps, check_videos=False)
    readout = None  # the goal read-out, fitted while the features are built (else after training)
    if rt.main and not (feat_dir / "features.json").exists():
        full_grid = {}  # the read-out's episodes (by index): encoded once, for both
        if cfg.use_state and loop.steps > 0:
            positions = readout_positions(train, encoder, cfg.readout_frames, cameras)
            full_grid = {int(train.episode_index[p]): None for p in positions}
        FeatureStore.build(full, encoder, cfg.pool, feat_dir, train_episodes=train_eps, device=rt.device,
                           progress=loop.progress, encoder_run=str(cfg.encoder), image_keys=cameras,
                           full_grid=full_grid or None)  # fmt: skip
        if full_grid:
            readout = goal_readout(cfg, train, encoder, codec, cameras, rt, full_grid)
            del full_grid
    if rt.world > 1:
        torch.distributed.barrier()
    store = FeatureStore(feat_dir)
    built = store.image_keys
    if store.meta["pool"] != cfg.pool or store.meta["encoder_run"] != str(cfg.encoder) or built != cameras:
        raise ValueError(f"features at {feat_dir} were built with pool {store.meta['pool']} from "
                         f"{store.meta['encoder_run']!r} on {list(built)}; this run wants pool {cfg.pool} from "
                         f"{str(cfg.encoder)!r} on {list(cameras)}")  # fmt: skip

    # -- data -----------------------------------------------------------------------------
    seqs = FeatureClips(train, store, cfg.frames, cfg.frameskip)

    # -- model and optimiser ----------------------------------------------------------------
    torch.manual_seed(loop.seed)
    model = ActionConditionedPredictor(pcfg)
    if cfg.init_official is not None:
        from worldmodel.official import load_official_file, official_ac_predictor

        model = official_ac_predictor(load_official_file(cfg.init_official)["predictor"], pcfg).train()
    model = model.to(rt.device)
    saved = load_checkpoint(run, {"predictor": model}) if resume else None
    rt.sharded = use_fsdp(loop.parallel, rt, large=pcfg.dim >= 1024)
    # rollouts call the blocks' parts step by step, so FSDP2 gathers the predictor as one unit
    ddp = wrap(model, rt, per_block=False, methods=("unroll",))
    opt = adamw(*split_decay(model.parameters()), cfg.optim, rt)
    start = resume_optimizer(model, opt, saved)
    logger = RunLogger(run, enabled=rt.main)
    logger.truncate_after(start)
    sampler = StepBatchSampler(len(seqs), loop.batch_size, loop.seed, start, loop.steps, rt.rank, rt.world)
    batches = (seqs.batch(ix) for ix in sampler)  # stored features: a vectorised gather, no workers needed

    # -- loop -------------------------------------------------------------------------------
    loss_readout = frozen_readout(cfg, store, full, held, codec, run, rt) if cfg.readout_weight > 0 else None
    loss_of = compiled(lambda z, actions, states: sequence_loss(ddp, z, actions, states, cfg, loss_readout),
                       loop.compile, rt)  # fmt: skip

    def loss_fn(step: int, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z = batch["z"].to(rt.device)
        actions, states = batch["actions"].to(rt.device), codec.encode(batch["states"].to(rt.device))
        return loss_of(z, actions, states)

    metrics, done = run_training(
        name="train-ac", rt=rt, loop=loop, optim=cfg.optim, run=run, model=model, modules={"predictor": model},
        opt=opt, batches=batches, start=start, logger=logger, loss_fn=loss_fn,
    )  # fmt: skip
    if done >= loop.steps:
        weights = full_state(model, rt)  # collective under FSDP2
        if rt.main:
            if cfg.use_state and readout is None:
                readout = goal_readout(cfg, train, encoder, codec, cameras, rt)
            export_world_model(weights, pcfg, run, encoder_run=cfg.encoder, mean=store.meta["mean"],
                               std=store.meta["std"], pool=cfg.pool, frameskip=cfg.frameskip, codec=codec,
                               readout=readout, features=full.features, image_keys=cameras)  # fmt: skip
    return metrics


def goal_readout(cfg: TrainACConfig, train, encoder, codec: StateCodec, cameras, rt: Runtime, encoded=None):
    """The world model's goal read-out on the frozen encoder's full-grid features of training
    frames (``encoded``: some of them already computed, by episode index)."""
    return fit_goal_readout(train, encoder, rt.device, codec, kind=cfg.readout, frames=cfg.readout_frames,
                            mlp_steps=cfg.readout_steps, progress=cfg.loop.progress, image_keys=cameras,
                            encoded=encoded)  # fmt: skip


def frozen_readout(cfg: TrainACConfig, store, full, held, codec: StateCodec, run: Path, rt: Runtime):
    """The frozen read-out of ``readout_weight``: fitted once by the main process and saved in the
    run (``loss_readout.safetensors``), so every process and every resume uses the same one."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = run / "loss_readout.safetensors"
    if rt.main and not path.exists():
        rows = readout_rows(full, held)
        fitted = fit_feature_readout(store, full, rows, codec, cfg.readout, progress=cfg.loop.progress)
        tensors = {k: v.contiguous() for k, v in fitted.tensors().items()}
        save_file(tensors, str(path), metadata={"kind": readout_kind(fitted)})
    if rt.world > 1:
        torch.distributed.barrier()
    with safe_open(str(path), "pt") as f:
        kind = f.metadata()["kind"]
    readout = readout_from_tensors(kind, load_file(str(path)), rt.device)
    if isinstance(readout, torch.nn.Module):
        readout.requires_grad_(False).eval()
    return readout


def export_world_model(
    weights: dict[str, torch.Tensor], pcfg: PredictorConfig, run: Path, *, encoder_run: Path, mean: list[float],
    std: list[float], pool: int, frameskip: int, codec: StateCodec, readout=None, features: dict | None = None,
    image_keys: tuple[str, ...] = (),
) -> None:  # fmt: skip
    """Write what ``WorldModel.load`` reads: ``predictor.safetensors``, the read-out and
    ``world_model.json`` (the encoder run, the feature standardisation the predictor saw, pooling,
    frameskip, the state encoding, the cameras it sees in order, and the names of the dataset's
    state and action dims from its ``features``)."""
    from safetensors.torch import save_file

    from worldmodel.data.format import feature_names

    save_file(weights, str(run / "predictor.safetensors"))
    if readout is not None:
        save_file({k: v.contiguous() for k, v in readout.tensors().items()}, str(run / READOUT_FILE))
    spec = {
        "encoder_run": str(Path(encoder_run).resolve()),
        "predictor": to_plain(pcfg),
        "pool": pool,
        "frameskip": frameskip,
        "mean": mean,
        "std": std,
        "state_dim": codec.dim,
        "state_angles": list(codec.angles),
        "readout": None if readout is None else readout_kind(readout),
        "image_keys": list(image_keys),
        "state_names": feature_names((features or {}).get("observation.state", {})),
        "action_names": feature_names((features or {}).get("action", {})),
    }
    (run / "world_model.json").write_text(json.dumps(spec))
