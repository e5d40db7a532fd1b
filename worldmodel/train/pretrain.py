"""V-JEPA encoder pretraining on any LeRobot dataset directory.

    wm pretrain --data data/pointmass --out runs/enc-pm                       # CPU preset
    wm pretrain --data data/pointmass --preset tiny --loop.steps 20           # seconds
    torchrun --nproc_per_node 2 -m worldmodel.cli pretrain --data ... --out ... # DDP
    torchrun --nproc_per_node 8 -m worldmodel.cli pretrain --data ... --preset vitl  # FSDP2 (auto)
    python -c "from worldmodel.train.pretrain import PretrainConfig, pretrain; pretrain(PretrainConfig(...))"

The run directory holds ``config.yaml`` (the resolved config, written before step 1),
``metrics.jsonl`` (+ ``tb/`` with TensorBoard), ``checkpoint/`` (safetensors weights + a
``weights_only`` training state; a rerun with the same ``--out`` resumes exactly), and at the
end ``encoder.safetensors`` + ``encoder.json``: the EMA target encoder, the one used downstream.

Representation checks run every ``eval_every`` steps on held-out episodes (never trained on):
the per-dimension feature std (collapse) and the sensitivity of features to what moves, both for
the current target encoder and for the same architecture at its random initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from worldmodel.data import ClipDataset, ClipSpec, DatasetError, LeRobotDataset
from worldmodel.data.splits import HELD_OUT, split_episodes
from worldmodel.encoder import LARGE_ENCODERS, EncoderConfig, EncoderPreset, VideoEncoder
from worldmodel.eval.representation import feature_std, motion_change, sensitivity
from worldmodel.jepa.masks import MaskConfig, patch_motion, sample_masks
from worldmodel.jepa.objective import JEPA, JEPAConfig, MaskPredictorConfig
from worldmodel.jepa.sigreg import random_directions
from worldmodel.train.checkpoint import load_checkpoint, resume_optimizer
from worldmodel.train.config import LoopConfig, OptimConfig, to_plain
from worldmodel.train.logger import RunLogger
from worldmodel.train.loop import adamw, compiled, run_training
from worldmodel.train.parallel import full_state, use_fsdp, wrap
from worldmodel.train.rundir import open_run
from worldmodel.train.runtime import Runtime, loader_context, step_generator, training_process
from worldmodel.train.sampling import StepBatchSampler
from worldmodel.world_model import save_encoder


@dataclass(frozen=True)
class PretrainConfig:
    """Pretrain a V-JEPA video encoder (masked latent prediction) on a LeRobot dataset."""

    data: Path
    """LeRobot dataset directory (v3.0 or v2.1)"""
    out: Path = Path("runs/pretrain")
    """run directory (reused to resume)"""
    preset: EncoderPreset = "cpu-small"
    """model size; the encoder's image size is set to the dataset's frames"""
    predictor: MaskPredictorConfig = field(default_factory=MaskPredictorConfig)
    masks: MaskConfig = field(default_factory=MaskConfig)
    ema: tuple[float, float] = JEPAConfig.ema
    """EMA momentum of the target encoder, rising linearly from the first to the second over training"""
    sigreg: float = JEPAConfig.sigreg
    """weight of SIGReg (LeJEPA's anti-collapse term) on the context tokens; 0: the plain V-JEPA
    2 recipe"""
    sigreg_directions: int = 256
    """random projections per step for SIGReg"""
    frames: int = 4
    """frames per clip (a multiple of the tubelet)"""
    frameskip: int = 1
    """env steps between clip frames"""
    held_out: float = HELD_OUT
    """fraction of episodes kept out of training for the checks"""
    image_keys: tuple[str, ...] = ()
    """cameras to pretrain on (default: the dataset's first); several (of one frame size) give clips
    of each camera to the one encoder"""
    cache: bool = True
    """decode the video once into a frame cache"""
    loop: LoopConfig = field(default_factory=LoopConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


def model_config(cfg: PretrainConfig, image_size: int) -> JEPAConfig:
    """The JEPA config a run uses (derived; the run config is never modified)."""
    enc = EncoderConfig.preset(cfg.preset)
    if cfg.preset == "tiny":
        enc = EncoderConfig(
            **{**to_plain(enc), "image_size": image_size, "patch_size": max(image_size // 4, 1)}
        )
        pred = MaskPredictorConfig.tiny()
    else:
        enc = EncoderConfig(**{**to_plain(enc), "image_size": image_size})
        pred = cfg.predictor
    pred = MaskPredictorConfig(**{**to_plain(pred), "num_mask_tokens": len(cfg.masks.kinds)})
    return JEPAConfig(encoder=enc, predictor=pred, masks=cfg.masks, ema=tuple(cfg.ema), sigreg=cfg.sigreg)


def _param_groups(model: torch.nn.Module) -> tuple[list, list]:
    """The trained parameters with weight decay and those without (norms, biases, mask tokens)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad or name.startswith("target_encoder"):
            continue
        (no_decay if p.ndim < 2 or "mask_tokens" in name else decay).append(p)
    return decay, no_decay


class RepresentationCheck:
    """Feature std and motion sensitivity on a fixed held-out batch of clip pairs."""

    def __init__(self, held: LeRobotDataset | None, cfg: PretrainConfig, key: str, size: int, rt: Runtime):
        self.video1 = self.video2 = None
        if held is None or held.num_episodes == 0:
            return
        spec = ClipSpec(context=2 * cfg.frames, future=0, frameskip=cfg.frameskip)
        try:
            clips = ClipDataset(held, spec, image_key=key, state_key=None, action_key=None, cache=False)
        except ValueError:
            return  # held-out episodes too short for a clip pair
        g = torch.Generator().manual_seed(cfg.loop.seed + 17)
        idx = torch.randperm(len(clips), generator=g)[:size].tolist()
        video = torch.stack([clips[i]["frames"] for i in idx]).float().div(255)  # (B, 2F, C, H, W)
        self.video1 = video[:, : cfg.frames].to(rt.device)
        self.video2 = video[:, cfg.frames :].to(rt.device)

    @torch.no_grad()
    def __call__(self, encoder) -> dict[str, float]:
        if self.video1 is None:
            return {}
        was = encoder.training
        encoder.eval()
        z1, z2 = encoder(self.video1), encoder(self.video2)
        encoder.train(was)
        return {
            "feature_std": feature_std(z1),
            "sensitivity": sensitivity(z1, z2),
            "motion_change": motion_change(z1, z2),
        }


def pretrain(cfg: PretrainConfig) -> dict[str, float]:
    """Train (or resume) a V-JEPA encoder; returns the final metrics."""
    with training_process(cfg.loop.device, cfg.loop.precision, cfg.loop.threads) as rt:
        return _pretrain(cfg, rt)


def _pretrain(cfg: PretrainConfig, rt: Runtime) -> dict[str, float]:
    # -- setup ----------------------------------------------------------------------------
    loop = cfg.loop
    full = LeRobotDataset(cfg.data)
    if not full.num_episodes:
        raise DatasetError(f"{full.info_path}: the dataset holds no episodes")
    keys = full.cameras(cfg.image_keys)
    key = keys[0]
    train_eps, held_eps = split_episodes(full.episode_index, cfg.held_out, seed=loop.seed)
    image_size = int(full.features[key]["shape"][0])
    mcfg = model_config(cfg, image_size)
    if cfg.frames % mcfg.encoder.tubelet:
        raise ValueError(f"frames={cfg.frames} must be a multiple of the tubelet ({mcfg.encoder.tubelet})")
    run = Path(cfg.out)
    resume = open_run(run, {"run": cfg, "model": mcfg, "held_out_episodes": held_eps},
                      force_new=loop.force_new, main=rt.main)  # fmt: skip

    # -- data -----------------------------------------------------------------------------
    train = LeRobotDataset(cfg.data, episodes=train_eps)
    spec = ClipSpec(context=cfg.frames, future=0, frameskip=cfg.frameskip)
    frames_only = dict(state_key=None, action_key=None, cache=cfg.cache, progress=loop.progress)
    clips = torch.utils.data.ConcatDataset(
        [ClipDataset(train, spec, image_key=k, **frames_only) for k in keys]
    )  # each camera's clips in turn: the batches mix cameras
    held = LeRobotDataset(cfg.data, episodes=held_eps) if held_eps else None
    check = RepresentationCheck(held, cfg, key, size=64, rt=rt) if rt.main else None

    # -- model and optimiser ----------------------------------------------------------------
    torch.manual_seed(loop.seed)
    model = JEPA(mcfg).to(rt.device)
    init_check = check(model.target_encoder) if check else {}
    saved = load_checkpoint(run, _modules(model)) if resume else None
    rt.sharded = use_fsdp(loop.parallel, rt, large=cfg.preset in LARGE_ENCODERS)
    ddp = wrap(model, rt)  # DDP, or FSDP2 in place (the optimiser is built after sharding)
    opt = adamw(*_param_groups(model), cfg.optim, rt)
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
    loss_of = compiled(ddp, loop.compile, rt)  # masks vary in size: shapes marked dynamic after a recompile

    def loss_fn(step: int, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        video = batch["frames"].to(rt.device, non_blocking=True).float().div_(255)  # (B, T, C, H, W)
        motion = patch_motion(video, mcfg.encoder.patch_size) if cfg.masks.motion_weight > 0 else None
        g = step_generator(loop.seed, step, stream=2 + rt.rank)
        tubelets = cfg.frames // mcfg.encoder.tubelet
        masks = sample_masks(len(video), mcfg.encoder.grid, tubelets, cfg.masks, g, motion)
        masks = [(c.to(rt.device), t.to(rt.device)) for c, t in masks]
        directions = None
        if cfg.sigreg > 0:
            g = step_generator(loop.seed, step, stream=1000 + rt.rank)
            directions = random_directions(mcfg.encoder.dim, cfg.sigreg_directions, g).to(rt.device)
        return loss_of(video, masks, directions)

    def after_step(step: int) -> dict[str, float]:
        momentum = model.momentum(step, loop.steps)
        model.update_target(momentum)
        return {"ema": momentum}

    def on_eval(done: int) -> dict[str, float]:
        target = model.target_encoder
        if rt.sharded:  # gathering is collective; the main process checks an unsharded copy
            weights = full_state(target, rt)
            if not rt.main:
                return {}
            target = _unsharded_encoder(mcfg, weights, rt.device)
        rep = check(target)
        rep.update({f"{k}_init": v for k, v in init_check.items()})
        if init_check.get("sensitivity"):
            rep["sensitivity_vs_init"] = rep["sensitivity"] / init_check["sensitivity"]
            rep["motion_change_vs_init"] = rep["motion_change"] / init_check["motion_change"]
        return rep

    metrics, done = run_training(
        name="pretrain", rt=rt, loop=loop, optim=cfg.optim, run=run, model=model, modules=_modules(model), opt=opt,
        batches=loader, start=start, logger=logger, loss_fn=loss_fn, after_step=after_step,
        on_eval=on_eval if check or rt.sharded else None,
    )  # fmt: skip

    # -- export -----------------------------------------------------------------------------
    if done >= loop.steps:
        weights = full_state(model.target_encoder, rt)  # collective under FSDP2
        if rt.main:
            save_encoder(weights, mcfg.encoder, run)
    return metrics


def _modules(model: JEPA) -> dict[str, torch.nn.Module]:
    return {"encoder": model.encoder, "predictor": model.predictor, "target_encoder": model.target_encoder}


def _unsharded_encoder(mcfg: JEPAConfig, weights: dict[str, torch.Tensor], device):
    enc = VideoEncoder(mcfg.encoder)
    enc.load_state_dict(weights)
    return enc.to(device)
