"""Training the end-to-end JEPA world model: encoder and predictor together, from pixels.

    wm train-joint --data data/pointmass --out runs/joint-pm
    wm train-joint --data data/pointmass --out runs/joint-pm --init-encoder runs/enc-pm
    wm train-joint --data data/pointmass --out runs/joint-tiny --preset tiny --loop.steps 20
    torchrun --nproc_per_node 2 -m worldmodel.cli train-joint --data ... --out ...   # DDP

The recipe (``worldmodel.jepa.joint``): each frame is one embedding; next-embedding prediction,
teacher-forced and rolled out, with SIGReg against collapse and an optional straightening term.
The run directory holds ``config.yaml``, ``metrics.jsonl``, a resumable ``checkpoint/`` and, at
the end, everything ``WorldModel.load`` needs: the trained encoder (``encoder.safetensors`` +
``encoder.json``: the run is its own encoder run), ``predictor.safetensors``,
``world_model.json`` and the goal-state read-out, so ``wm eval``, ``wm compare`` and the
benchmark take it as they take a ``train-ac`` run.

Train on frames as the planner sees them: a dataset collected with ``--codec h264-lossless``
holds the rendered pixels exactly; a lossy codec shifts what the embedding reads off a frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from worldmodel.data import ClipDataset, ClipSpec, DatasetError, LeRobotDataset
from worldmodel.data.splits import HELD_OUT
from worldmodel.encoder import EncoderConfig, EncoderPreset, VideoEncoder
from worldmodel.jepa.joint import JointLossConfig, JointWorldModel
from worldmodel.jepa.sigreg import random_directions
from worldmodel.predictor import ActionConditionedPredictor, PredictorConfig
from worldmodel.readout.fit import fit_goal_readout
from worldmodel.train.checkpoint import load_checkpoint, resume_optimizer
from worldmodel.train.config import LoopConfig, OptimConfig, to_plain
from worldmodel.train.logger import RunLogger
from worldmodel.train.loop import adamw, compiled, run_training, split_decay
from worldmodel.train.parallel import full_state, wrap
from worldmodel.train.predictor import (
    PredictorPreset,
    PredictorSize,
    export_world_model,
    inherited_held_out,
    state_codec,
)
from worldmodel.train.rundir import open_run
from worldmodel.train.runtime import Runtime, loader_context, step_generator, training_process
from worldmodel.train.sampling import StepBatchSampler
from worldmodel.world_model import load_encoder, save_encoder


@dataclass(frozen=True)
class TrainJointConfig:
    """Train the end-to-end JEPA world model (encoder + predictor together) on a LeRobot dataset."""

    data: Path
    """LeRobot dataset directory with a camera, actions and proprio states"""
    out: Path = Path("runs/joint")
    """run directory (reused to resume)"""
    preset: EncoderPreset = "cpu-small"
    """encoder size (its image size is set to the dataset's frames)"""
    encoder_dim: int | None = None
    """encoder width instead of the preset's"""
    encoder_depth: int | None = None
    """encoder blocks instead of the preset's"""
    tubelet: int = 1
    """frames per encoder token (single frames are repeated to fill it)"""
    embed_dim: int = 192
    """width of the per-frame embedding (the encoder's head)"""
    embed_grid: int = EncoderConfig.embed_grid
    """the head reads the patch grid pooled to embed_grid x embed_grid"""
    image_keys: tuple[str, ...] = ()
    """cameras the encoder sees, in this order (default: the dataset's first); several (of one
    frame size): each encoded by the shared ViT, the embedding head reads them all"""
    init_encoder: Path | None = None
    """start the encoder from a ``wm pretrain`` run (its shape replaces --preset and --tubelet)"""
    predictor: PredictorPreset = "cpu-small"
    """predictor size"""
    frames: int = 4
    """frames per training clip"""
    frameskip: int = 5
    """env steps per model step (the action block)"""
    loss: JointLossConfig = field(default_factory=JointLossConfig)
    sigreg_directions: int = 256
    """random projections per step for SIGReg"""
    use_state: bool = True
    """proprio state tokens (and a next-state head)"""
    state_angles: tuple[int, ...] | None = None
    """proprio dims that are angles in radians, seen as (cos, sin) (default: the task's)"""
    readout: Literal["auto", "mlp", "ridge", "none"] = "auto"
    """the goal-state read-out fitted on the trained encoder at the end (none: skip it)"""
    readout_frames: int = 40_000
    """training frames the goal read-out is fitted on"""
    readout_steps: int = 6000
    """optimiser steps of the MLP read-out's fit"""
    recalibrate_frames: int = 8192
    """training frames the embedding head's BatchNorm statistics are recomputed on at the end"""
    held_out: float = HELD_OUT
    """fraction of episodes held out (those of --init-encoder's run when it used this dataset)"""
    cache: bool = True
    """decode the video once into a frame cache"""
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=3000, batch_size=32, eval_every=500))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-4, weight_decay=0.01))


def encoder_config(cfg: TrainJointConfig, image_size: int, cameras: int = 1) -> EncoderConfig:
    """The run's encoder: --init-encoder's shape, or the preset at the dataset's image size; with
    the embedding head."""
    if cfg.init_encoder is not None:
        base = to_plain(load_encoder(cfg.init_encoder).cfg)
    else:
        base = {
            **to_plain(EncoderConfig.preset(cfg.preset)),
            "image_size": image_size,
            "tubelet": cfg.tubelet,
        }
        if cfg.preset == "tiny":
            base["patch_size"] = max(image_size // 4, 1)
        base["dim"] = cfg.encoder_dim or base["dim"]
        base["depth"] = cfg.encoder_depth or base["depth"]
    if base["image_size"] != image_size:
        raise ValueError(
            f"{cfg.init_encoder} encodes {base['image_size']}px frames; {cfg.data} has {image_size}px"
        )
    return EncoderConfig(
        **{**base, "embed_dim": cfg.embed_dim, "embed_grid": cfg.embed_grid, "cameras": cameras}
    )


def held_out_episodes(cfg: TrainJointConfig, full: LeRobotDataset) -> list[int]:
    """--init-encoder's held-out episodes when it trained on this dataset, else a fresh split."""
    return inherited_held_out(cfg.init_encoder, cfg.data, full, cfg.held_out, cfg.loop.seed)


@torch.no_grad()
def recalibrate_head(encoder: VideoEncoder, clips: ClipDataset, device, frames: int, seed: int = 0,
                     batch: int = 256) -> None:  # fmt: skip
    """Set the embedding head's BatchNorm statistics to the average over ``frames`` random
    training frames (running averages drift while the encoder trains); eval mode then computes
    one fixed function of a frame. Deterministic; every process computes the same."""
    norms = [m for m in encoder.head.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    g = torch.Generator().manual_seed(seed + 31)
    idx = torch.randperm(len(clips), generator=g)[: max(1, frames // clips.spec.frames)].tolist()
    was = encoder.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
        m.sync = False  # every process sees the same frames: local statistics are the global ones
    encoder.train()
    per = max(1, batch // clips.spec.frames)
    for i in range(0, len(idx), per):
        video = torch.stack([clips[j]["frames"] for j in idx[i : i + per]]).flatten(0, 1)
        encoder.embed_frames(video.to(device).float().div_(255))
    for m in norms:
        m.momentum, m.sync = 0.1, True
    encoder.train(was)


def train_joint(cfg: TrainJointConfig) -> dict[str, float]:
    """Train (or resume) the end-to-end world model; returns the final metrics."""
    with training_process(cfg.loop.device, cfg.loop.precision, cfg.loop.threads) as rt:
        return _train(cfg, rt)


def _train(cfg: TrainJointConfig, rt: Runtime) -> dict[str, float]:
    # -- setup ----------------------------------------------------------------------------
    loop = cfg.loop
    if cfg.frames < 2:
        raise ValueError(f"frames={cfg.frames}: a clip needs at least 2 frames (one transition)")
    if cfg.loss.rollout_steps > cfg.frames - 1:
        raise ValueError(
            f"loss.rollout_steps={cfg.loss.rollout_steps} needs frames >= {cfg.loss.rollout_steps + 1}"
        )
    full = LeRobotDataset(cfg.data)
    if not full.num_episodes:
        raise DatasetError(f"{full.info_path}: the dataset holds no episodes")
    for key in ("action", "observation.state"):
        if key not in full.columns:
            raise ValueError(f"{cfg.data} has no {key!r} column: the world model needs actions and states")
    keys = full.cameras(cfg.image_keys)
    key = keys[0]
    held = held_out_episodes(cfg, full)
    train_eps = [int(e) for e in full.episode_index if int(e) not in set(held)]
    enc_cfg = encoder_config(cfg, int(full.features[key]["shape"][0]), cameras=len(keys))
    codec = state_codec(cfg, full)
    size = PredictorSize.preset(cfg.predictor)
    pcfg = PredictorConfig(enc_dim=cfg.embed_dim, grid=1, pool=0, action_dim=cfg.frameskip * full.columns["action"].shape[1],
                           state_dim=codec.encoded_dim if cfg.use_state else 0, dim=size.dim, depth=size.depth,
                           heads=size.heads, residual=size.residual)  # fmt: skip
    run = Path(cfg.out)
    resume = open_run(run, {"run": cfg, "encoder": enc_cfg, "predictor": pcfg, "held_out_episodes": held,
                            "state_angles": codec.angles}, force_new=loop.force_new, main=rt.main)  # fmt: skip

    # -- data -----------------------------------------------------------------------------
    train = LeRobotDataset(cfg.data, episodes=train_eps)
    clips = ClipDataset(train, ClipSpec(context=cfg.frames, future=0, frameskip=cfg.frameskip), image_key=keys,
                        cache=cfg.cache, progress=loop.progress)  # fmt: skip

    # -- model and optimiser ----------------------------------------------------------------
    torch.manual_seed(loop.seed)
    encoder = VideoEncoder(enc_cfg)
    if cfg.init_encoder is not None:
        missing, unexpected = encoder.load_state_dict(
            load_encoder(cfg.init_encoder).state_dict(), strict=False
        )
        if unexpected or any(not k.startswith("head.") for k in missing):
            raise ValueError(f"{cfg.init_encoder}: encoder weights do not match (missing {missing[:4]}, unexpected {unexpected[:4]})")  # fmt: skip
    model = JointWorldModel(encoder, ActionConditionedPredictor(pcfg), cfg.loss).to(rt.device)
    modules = {"encoder": model.encoder, "predictor": model.predictor}
    saved = load_checkpoint(run, modules) if resume else None
    ddp = wrap(model, rt, per_block=False)
    opt = adamw(*split_decay(p for p in model.parameters() if p.requires_grad), cfg.optim, rt)
    start = resume_optimizer(model, opt, saved)
    logger = RunLogger(run, enabled=rt.main)
    logger.truncate_after(start)
    sampler = StepBatchSampler(len(clips), loop.batch_size, loop.seed, start, loop.steps, rt.rank, rt.world)
    loader = torch.utils.data.DataLoader(
        clips,
        batch_sampler=sampler,
        num_workers=loop.num_workers,
        multiprocessing_context=loader_context(loop.num_workers),
    )

    # -- loop -------------------------------------------------------------------------------
    loss_of = compiled(ddp, loop.compile, rt)

    def loss_fn(step: int, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        video = batch["frames"].to(rt.device, non_blocking=True).float().div_(255)  # (B, T, C, H, W)
        actions = batch["actions"].to(rt.device)
        states = codec.encode(batch["state"].to(rt.device)) if cfg.use_state else None
        directions = None
        if cfg.loss.sigreg > 0:
            g = step_generator(loop.seed, step, stream=1000)  # the same on every process: one global SIGReg
            directions = random_directions(cfg.embed_dim, cfg.sigreg_directions, g).to(rt.device)
        return loss_of(video, actions, states, directions, loop.batch_size if rt.world > 1 else None)

    metrics, done = run_training(
        name="train-joint", rt=rt, loop=loop, optim=cfg.optim, run=run, model=model, modules=modules, opt=opt,
        batches=loader, start=start, logger=logger, loss_fn=loss_fn,
    )  # fmt: skip

    # -- export -----------------------------------------------------------------------------
    if done >= loop.steps:
        recalibrate_head(
            model.encoder, clips, rt.device, cfg.recalibrate_frames, seed=loop.seed
        )  # every process
        enc_w, pred_w = full_state(model.encoder, rt), full_state(model.predictor, rt)
        if rt.main:
            save_encoder(enc_w, enc_cfg, run)  # the run is its own encoder run
            readout = None
            if cfg.use_state and cfg.readout != "none":
                trained = load_encoder(run, rt.device)
                readout = fit_goal_readout(train, trained, rt.device, codec, kind=cfg.readout,
                                           frames=cfg.readout_frames, mlp_steps=cfg.readout_steps,
                                           progress=loop.progress, image_keys=keys)  # fmt: skip
            zeros, ones = [0.0] * cfg.embed_dim, [1.0] * cfg.embed_dim  # the predictor sees raw embeddings
            export_world_model(pred_w, pcfg, run, encoder_run=run, mean=zeros, std=ones, pool=0,
                               frameskip=cfg.frameskip, codec=codec, readout=readout, features=full.features,
                               image_keys=keys)  # fmt: skip
    return metrics
