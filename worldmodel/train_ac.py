"""Training the action-conditioned predictor on a frozen encoder's features.

    wm train-ac --data data/pointmass --encoder runs/enc-pm --out runs/ac-pm
    wm train-ac --data data/pointmass --encoder runs/enc-pm --out runs/ac-pm --preset tiny --loop.steps 20
    python -c "from worldmodel.train_ac import TrainACConfig, train_ac; train_ac(TrainACConfig(...))"

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

from worldmodel.datasets import LeRobotDataset
from worldmodel.datasets.splits import split_episodes
from worldmodel.features import FeatureClips, FeatureStore
from worldmodel.predictor import ActionConditionedPredictor, PredictorConfig
from worldmodel.pretrain import load_encoder
from worldmodel.state_codec import StateCodec
from worldmodel.training.checkpoint import has_checkpoint, load_checkpoint, resume_optimizer
from worldmodel.training.config import LoopConfig, OptimConfig, load_config_dict, save_config, to_plain
from worldmodel.training.logger import RunLogger
from worldmodel.training.loop import run_training
from worldmodel.training.parallel import full_state, use_fsdp, wrap
from worldmodel.training.runtime import Runtime, setup, teardown
from worldmodel.training.sampling import StepBatchSampler


@dataclass(frozen=True)
class PredictorSize:
    dim: int = 128
    depth: int = 4
    heads: int = 4
    residual: bool = True

    @classmethod
    def preset(cls, name: str) -> PredictorSize:
        sizes = {"tiny": cls(dim=32, depth=1, heads=2), "cpu": cls(), "cpu-small": cls(dim=64, depth=3, heads=4),
                 "gpu": cls(dim=512, depth=12, heads=8), "vjepa2-ac": cls(dim=1024, depth=24, heads=16)}  # fmt: skip
        if name not in sizes:
            raise ValueError(f"unknown predictor preset {name!r}; choose one of {sorted(sizes)}")
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
    preset: Literal["tiny", "cpu-small", "cpu", "gpu", "vjepa2-ac", "custom"] = "cpu"
    """predictor size; custom uses --size"""
    size: PredictorSize = field(default_factory=PredictorSize)
    pool: int = 4
    """pool the encoder's patch grid to pool x pool tokens (0: no pooling)"""
    frameskip: int = 5
    """env steps per model step (the action block)"""
    frames: int = 6
    """frames per training sequence"""
    rollout_steps: int | None = None
    """steps of the rollout loss (<= frames - 1; default frames - 1): 5, the planning horizon,
    measured best on point mass (85% vs 72-79% with 2-3 steps on 100 dataset-goal episodes)"""
    use_state: bool = True
    """proprio state tokens (and a next-state head)"""
    state_angles: tuple[int, ...] | None = None
    """proprio dims that are angles in radians, seen by the model as (cos, sin) (default: the
    task's, when the dataset's robot type is one of our tasks; none otherwise)"""
    readout: Literal["auto", "mlp", "ridge"] = "auto"
    """the goal-state read-out from a frame's features: ridge, an MLP, or auto: whichever reads
    held-out frames better (reacher: the MLP, elbow error 0.024 vs 0.383 rad)"""
    readout_frames: int = 40_000
    """training frames the goal read-out is fitted on (whole random episodes; 40,000 covers the
    benchmark's 360 training episodes): on the reacher (SIGReg encoder, 40 held-out episodes) the
    MLP misread the elbow by 0.0142 rad from 30,300 frames vs 0.0185 from 12,000"""
    readout_steps: int = 6000
    """optimiser steps of the MLP read-out's fit: elbow error 0.0109 rad at 6,000 vs 0.0142 at 2,000
    (frames of both joints within 0.025 rad: 92% vs 83%)"""
    tf_weight: float = 1.0
    rollout_weight: float = 1.0
    state_weight: float = 1.0
    """weight of the next-state losses (teacher-forced and along the rollout)"""
    decode_weight: float = 0.0
    """weight of a loss on the state read out of the rolled-out features by a frozen read-out
    fitted on true stored features before training: keeps predictions where a read-out fitted on
    true features can decode them (0: off). Measured at 1: on the reacher the decoded state beat
    copy-last at every horizon (0.388 vs 0.443 at h=1) and planning held (56.0% vs 54.7%); on
    point mass the latent error fell behind copy-last, hence off by default"""
    held_out: float = 0.1
    """fraction of episodes held out (the encoder run's held-out episodes when it used this dataset)"""
    init_official: Path | None = None
    """fine-tune an official V-JEPA 2-AC predictor: its checkpoint file (sets the predictor's shape)"""
    official_heads: int = 16
    """attention heads of the official predictor (not recorded in its weights)"""
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=10_000, batch_size=64, eval_every=500))
    """10,000 steps (17 min on 2 CPU cores at the cpu-small preset): measured with SIGReg encoders,
    planning rose from 69% to 81% (reacher) and from 85% to 93% (point mass) over 2,500 steps,
    the demo's budget (3 x 50 dataset goals, CEM 100 x 10)"""
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, weight_decay=0.01))


def predictor_config(
    cfg: TrainACConfig, enc_dim: int, grid: int, action_dim: int, state_dim: int
) -> PredictorConfig:
    if cfg.init_official is not None:
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
        residual=size.residual,
    )  # fmt: skip


def sequence_loss(
    model, z, actions, states, cfg: TrainACConfig, readout=None
) -> tuple[torch.Tensor, dict[str, float]]:
    """z (B, T, N, D), actions (B, T, A), states (B, T, P) (encoded) -> weighted loss and its
    parts; ``readout`` (frozen, features (B, N*D) -> encoded states) for ``cfg.decode_weight``."""
    s_in = states if cfg.use_state else None
    pred_z, pred_s = model(z, actions, s_in)  # predictions of frames 1..T
    tf = (pred_z[:, :-1] - z[:, 1:]).abs().mean()
    parts = {"tf": tf}
    loss = cfg.tf_weight * tf
    if pred_s is not None:
        st = (pred_s[:, :-1] - states[:, 1:]).abs().mean()
        parts["state"] = st
        loss = loss + cfg.state_weight * st
    R = z.shape[1] - 1 if cfg.rollout_steps is None else min(cfg.rollout_steps, z.shape[1] - 1)
    if R >= 2 and cfg.rollout_weight > 0:
        # feed the model its own predictions (incrementally, with cached keys and values) and
        # score them against the true future, never against the input
        net = model.module if isinstance(model, DistributedDataParallel) else model  # DDP: same graph
        s0 = states[:, :1] if cfg.use_state else None
        roll_z, roll_s = net.unroll(z[:, :1], s0, actions[:, :R])
        ro = (roll_z - z[:, 1 : R + 1]).abs().mean()
        parts["rollout"] = ro
        loss = loss + cfg.rollout_weight * ro
        if pred_s is not None and roll_s is not None:  # the predicted states fed back, too
            ro_s = (roll_s - states[:, 1 : R + 1]).abs().mean()
            parts["rollout_state"] = ro_s
            loss = loss + cfg.rollout_weight * cfg.state_weight * ro_s
        if readout is not None and cfg.decode_weight > 0:  # the rolled-out features stay decodable
            w = readout.dim_weights  # (P,) trust: dims the read-out cannot read weigh 0
            decoded = readout(roll_z.flatten(2).flatten(0, 1)).view(*roll_z.shape[:2], -1)  # (B, R, P)
            dec = ((decoded - states[:, 1 : R + 1]).abs() * w).sum(-1).mean() / w.sum().clamp_min(1e-8)
            parts["decoded"] = dec
            loss = loss + cfg.decode_weight * dec
    return loss, {k: float(v.detach()) for k, v in parts.items()}


def state_codec(cfg: TrainACConfig, full: LeRobotDataset) -> StateCodec:
    """The run's state encoding: ``cfg.state_angles``, or the task's angle dims by robot type."""
    angles = cfg.state_angles
    if angles is None:
        from envs.registration import task_angle_dims

        angles = task_angle_dims(full.info.get("robot_type"))
    return StateCodec(full.columns["observation.state"].shape[1], tuple(angles))


def held_out_episodes(cfg: TrainACConfig, full: LeRobotDataset) -> list[int]:
    try:
        saved = load_config_dict(cfg.encoder)
        if Path(saved["run"]["data"]).resolve() == Path(cfg.data).resolve():
            return [int(e) for e in saved["held_out_episodes"]]
    except (FileNotFoundError, KeyError):
        pass
    return split_episodes(full.episode_index, cfg.held_out, seed=cfg.loop.seed)[1]


def train_ac(cfg: TrainACConfig) -> dict[str, float]:
    """Train (or resume) the predictor; returns the final metrics."""
    rt = setup(cfg.loop.device, cfg.loop.precision, cfg.loop.threads)
    try:
        return _train(cfg, rt)
    finally:
        teardown()


def _train(cfg: TrainACConfig, rt: Runtime) -> dict[str, float]:
    # -- setup ----------------------------------------------------------------------------
    loop = cfg.loop
    if cfg.rollout_steps is not None and cfg.rollout_steps > cfg.frames - 1:
        raise ValueError(f"rollout_steps={cfg.rollout_steps} needs frames >= {cfg.rollout_steps + 1}")
    if cfg.readout_frames < 1 or cfg.readout_steps < 1:
        raise ValueError(f"readout_frames and readout_steps must be >= 1, got {cfg.readout_frames} and "
                         f"{cfg.readout_steps}")  # fmt: skip
    full = LeRobotDataset(cfg.data)
    for key in ("action", "observation.state"):
        if key not in full.columns:
            raise ValueError(f"{cfg.data} has no {key!r} column: the predictor needs actions and states")
    held = held_out_episodes(cfg, full)
    train_eps = [int(e) for e in full.episode_index if int(e) not in set(held)]
    encoder = load_encoder(cfg.encoder, rt.device)
    run = Path(cfg.out)
    feat_dir = Path(cfg.features) if cfg.features else run / "features"
    codec = state_codec(cfg, full)
    pcfg = predictor_config(cfg, encoder.cfg.dim, encoder.cfg.grid, full.columns["action"].shape[1],
                            codec.encoded_dim)  # fmt: skip
    if rt.main:
        run.mkdir(parents=True, exist_ok=True)
        save_config(
            {"run": cfg, "predictor": pcfg, "held_out_episodes": held, "state_angles": codec.angles}, run
        )
        if not (feat_dir / "features.json").exists():
            FeatureStore.build(full, encoder, cfg.pool, feat_dir, train_episodes=train_eps, device=rt.device,
                               progress=loop.progress, encoder_run=str(cfg.encoder))  # fmt: skip
    if rt.world > 1:
        torch.distributed.barrier()
    store = FeatureStore(feat_dir)
    if store.meta["pool"] != cfg.pool or store.meta["encoder_run"] != str(cfg.encoder):
        raise ValueError(f"features at {feat_dir} were built with pool {store.meta['pool']} from "
                         f"{store.meta['encoder_run']!r}; this run wants pool {cfg.pool} from {str(cfg.encoder)!r}")  # fmt: skip

    # -- data -----------------------------------------------------------------------------
    train = LeRobotDataset(cfg.data, episodes=train_eps, check_videos=False)
    seqs = FeatureClips(train, store, cfg.frames, cfg.frameskip)

    # -- model and optimiser ----------------------------------------------------------------
    torch.manual_seed(loop.seed)
    model = ActionConditionedPredictor(pcfg)
    if cfg.init_official is not None:
        from worldmodel.official import load_official_file, official_ac_predictor

        model = official_ac_predictor(load_official_file(cfg.init_official)["predictor"], pcfg).train()
    model = model.to(rt.device)
    saved = load_checkpoint(run, {"predictor": model}) if loop.resume and has_checkpoint(run) else None
    rt.sharded = use_fsdp(loop.parallel, rt, large=pcfg.dim >= 1024)
    # rollouts call the blocks' parts step by step, so FSDP2 gathers the predictor as one unit
    ddp = wrap(model, rt, per_block=False, methods=("unroll",))
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.optim.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.optim.lr, betas=cfg.optim.betas)  # fmt: skip
    start = resume_optimizer(model, opt, saved)
    logger = RunLogger(run, enabled=rt.main)
    logger.truncate_after(start)
    sampler = StepBatchSampler(len(seqs), loop.batch_size, loop.seed, start, loop.steps, rt.rank, rt.world)
    batches = (seqs.batch(ix) for ix in sampler)  # stored features: a vectorised gather, no workers needed

    # -- loop -------------------------------------------------------------------------------
    readout = decoding_readout(cfg, store, full, held, codec, run, rt) if cfg.decode_weight > 0 else None

    def loss_fn(step: int, batch) -> tuple[torch.Tensor, dict[str, float]]:
        z = batch["z"].to(rt.device)
        actions, states = batch["actions"].to(rt.device), codec.encode(batch["states"].to(rt.device))
        return sequence_loss(ddp, z, actions, states, cfg, readout)

    metrics, done = run_training(
        name="train-ac", rt=rt, loop=loop, optim=cfg.optim, run=run, model=model, modules={"predictor": model},
        opt=opt, batches=batches, start=start, logger=logger, loss_fn=loss_fn,
    )  # fmt: skip
    if done >= loop.steps:
        weights = full_state(model, rt)  # collective under FSDP2
        if rt.main:
            probe = None
            if cfg.use_state:
                probe = fit_state_probe(train, encoder, rt.device, codec, cfg.readout, cfg.readout_frames,
                                        mlp_steps=cfg.readout_steps, progress=loop.progress)  # fmt: skip
            export_world_model(weights, pcfg, cfg, store, run, codec, probe)
    return metrics


def readout_rows(full: LeRobotDataset, held, frames: int = 4000, rng=None):
    """``frames`` dataset rows of the training episodes (not in ``held``), sorted, drawn with
    ``rng`` (a numpy Generator; default seeded with 0): the rows a feature read-out is fitted on."""
    import numpy as np

    rng = np.random.default_rng(0) if rng is None else rng
    held = set(int(e) for e in held)
    rows = np.concatenate([np.arange(int(s), int(s) + int(n)) for e, s, n in zip(full.episode_index, full.starts,
                           full.lengths) if int(e) not in held])  # fmt: skip
    return np.sort(rng.choice(rows, size=min(frames, len(rows)), replace=False))


def fit_feature_readout(
    store: FeatureStore, full: LeRobotDataset, rows, codec: StateCodec, kind: str = "auto", seed: int = 0,
    progress: bool = False,
):  # fmt: skip
    """Read-out of the encoded state from *stored* features (pooled, standardised: the space the
    predictor predicts in) of dataset ``rows`` (``readout_rows``); ``seed`` seeds the fit."""
    import numpy as np

    from worldmodel.state_probe import fit_readout

    targets = codec.encode(torch.from_numpy(full.columns["observation.state"][rows]).float()).numpy()
    shuffle = np.random.default_rng(1).permutation(len(rows))  # the fit scores its last slice
    x = store.rows(rows[shuffle]).flatten(1).numpy()
    return fit_readout(kind, x, targets[shuffle], seed=seed, progress=progress)


def decoding_readout(cfg: TrainACConfig, store, full, held, codec: StateCodec, run: Path, rt: Runtime):
    """The frozen read-out of ``decode_weight``: fitted once by the main process and saved in the
    run (``decode_readout.safetensors``), so every process and every resume uses the same one."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from worldmodel.state_probe import readout_from_tensors, readout_kind

    path = run / "decode_readout.safetensors"
    if rt.main and not path.exists():
        rows = readout_rows(full, held)
        probe = fit_feature_readout(store, full, rows, codec, cfg.readout, progress=cfg.loop.progress)
        tensors = {k: v.contiguous() for k, v in probe.tensors().items()}
        save_file(tensors, str(path), metadata={"kind": readout_kind(probe)})
    if rt.world > 1:
        torch.distributed.barrier()
    with safe_open(str(path), "pt") as f:
        kind = f.metadata()["kind"]
    probe = readout_from_tensors(kind, load_file(str(path)), rt.device)
    if isinstance(probe, torch.nn.Module):
        probe.requires_grad_(False).eval()
    return probe


#: memory for the goal read-out's features (float32)
READOUT_BYTES = 2 << 30


def fit_state_probe(
    train: LeRobotDataset, encoder, device, codec: StateCodec, kind: str = "auto",
    frames: int = TrainACConfig.readout_frames, seed: int = 0, mlp_steps: int = TrainACConfig.readout_steps,
    progress: bool = False,
):  # fmt: skip
    """Read-out (``kind``: auto, mlp or ridge; an MLP fitted with ``mlp_steps``) of the encoded
    proprio state from full-grid features of about ``frames`` training frames (whole random
    episodes, each decoded in one batch), fewer where their float32 features would pass
    ``READOUT_BYTES`` (the fits hold a few copies): all 40,000 of a 64x64 cpu-small encoder's
    (8,192 features, 1.3 GB), about 2,000 of a ViT-L's full grid."""
    import numpy as np
    from tqdm import tqdm

    from worldmodel.features import episode_features
    from worldmodel.state_probe import fit_readout

    order = np.random.default_rng(seed).permutation(train.num_episodes)
    feats, states, total = [], [], 0
    frames = min(frames, train.num_frames)
    bar = tqdm(
        total=frames, desc="state read-out: encoding frames", unit="frame", disable=not progress, leave=False
    )
    for z, s in episode_features(train, encoder, order, device):
        if not feats:
            frames = min(frames, max(1, READOUT_BYTES // (4 * z[0].numel())))
            bar.total = frames
        feats.append(z)
        states.append(s)
        total += len(z)
        bar.update(len(z))
        if total >= frames:
            break
    bar.close()
    # shuffle rows so the held-out slice of the fit is not a block of similar frames
    x, y = torch.cat(feats).numpy(), codec.encode(torch.from_numpy(np.concatenate(states)).float()).numpy()
    perm = np.random.default_rng(seed + 1).permutation(len(x))
    return fit_readout(kind, x[perm], y[perm], seed=seed, progress=progress, mlp_steps=mlp_steps)


def export_world_model(
    weights: dict[str, torch.Tensor], pcfg: PredictorConfig, cfg: TrainACConfig, store: FeatureStore, run: Path,
    codec: StateCodec, probe=None,
) -> None:  # fmt: skip
    from safetensors.torch import save_file

    from worldmodel.state_probe import readout_kind

    save_file(weights, str(run / "predictor.safetensors"))
    if probe is not None:
        save_file(
            {k: v.contiguous() for k, v in probe.tensors().items()}, str(run / "state_probe.safetensors")
        )
    spec = {
        "encoder_run": str(Path(cfg.encoder).resolve()),
        "predictor": to_plain(pcfg),
        "pool": cfg.pool,
        "frameskip": cfg.frameskip,
        "mean": store.meta["mean"],
        "std": store.meta["std"],
        "state_dim": codec.dim,
        "state_angles": list(codec.angles),
        "readout": None if probe is None else readout_kind(probe),
    }
    (run / "world_model.json").write_text(json.dumps(spec))
