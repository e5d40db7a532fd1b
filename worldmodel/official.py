"""Official V-JEPA 2 / V-JEPA 2-AC checkpoints in our modules, and back.

Our encoder, pretraining predictor and action-conditioned predictor use the official parameter
names, so the key mapping is: strip the official ``module.`` / ``backbone.`` prefixes to load, add
``module.backbone.`` to export (the layout the official loader reads). Official checkpoint files
hold ``encoder``, ``target_encoder`` and ``predictor`` state dicts. Nothing is downloaded: pass a
local path.

Compatibility mode (``official_*_config``) computes exactly what the official modules compute
(tested against reference outputs of the public code to 1e-5). The differences of our defaults,
each a config field:

| field | official | ours (default) | why |
|---|---|---|---|
| ``rope_variant`` | frequencies tiled over each axis block | one frequency per rotated pair | the official layout is a known quirk kept for their checkpoints |
| ``normalize_pixels`` | caller normalises; input (B, C, T, H, W) | ImageNet normalisation inside; input (B, T, C, H, W) in [0, 1] | one less thing to get wrong |
| ``norm_eps`` | 1e-6 in the published models (1e-5 as the class default) | 1e-6 | |
| predictor ``residual`` | predicts features directly | predicts the change (copy-last start) | learns faster on small data |
| predictor ``state_head`` | none: rollouts integrate end-effector deltas | predicts the next proprio state | works for any state space |
| predictor ``pool`` | full patch grid | pooled grid (e.g. 4x4) on CPU | planning cost |

Legend: B batch, C channels, T frames, H, W pixels, N tokens, D width.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from worldmodel.encoder import EncoderConfig, VideoEncoder
from worldmodel.jepa.objective import MaskPredictor, MaskPredictorConfig
from worldmodel.predictor import ActionConditionedPredictor, PredictorConfig

PREFIXES = ("module.", "backbone.")
EXPORT_PREFIX = "module.backbone."

#: published encoders: (width, depth, heads, mlp ratio, image size)
ENCODERS = {
    "vitl": (1024, 24, 16, 4.0, 256),
    "vith": (1280, 32, 16, 4.0, 256),
    "vitg": (1408, 40, 22, 48 / 11, 256),
    "vitg-384": (1408, 40, 22, 48 / 11, 384),
}


def official_encoder_config(name: str, norm_eps: float = 1e-6) -> EncoderConfig:
    """The published encoder ``name`` (vitl, vith, vitg, vitg-384) in compatibility mode."""
    if name not in ENCODERS:
        raise ValueError(f"unknown official encoder {name!r}; choose one of {sorted(ENCODERS)}")
    dim, depth, heads, mlp, size = ENCODERS[name]
    return EncoderConfig(image_size=size, patch_size=16, tubelet=2, dim=dim, depth=depth, heads=heads, mlp_ratio=mlp,
                         normalize_pixels=False, rope_variant="official", norm_eps=norm_eps)  # fmt: skip


def official_mask_predictor_config(
    dim: int = 384, depth: int = 12, heads: int = 12, num_mask_tokens: int = 10
) -> MaskPredictorConfig:
    """The published pretraining predictor (10 mask tokens, the official RoPE; in training every
    mask kind places mask token 0, as the official training wrapper does)."""
    return MaskPredictorConfig(dim=dim, depth=depth, heads=heads, num_mask_tokens=num_mask_tokens,
                               rope_variant="official", mask_token_per_kind=False)  # fmt: skip


def official_ac_predictor_config(
    enc_dim: int = 1408, grid: int = 16, dim: int = 1024, depth: int = 24, heads: int = 16,
    action_dim: int = 7, use_extrinsics: bool = False, norm_eps: float = 1e-6, feedback_norm: bool = True,
) -> PredictorConfig:  # fmt: skip
    """The V-JEPA 2-AC predictor (defaults: the published ViT-g one, about 305M parameters),
    rolled out as the official planning notebook does: predicted frames layer-normed before they
    are fed back (``feedback_norm``; its ``normalize_reps``), and with 7-D actions the end-effector
    pose moved by each action (``compute_new_pose``)."""
    return PredictorConfig(enc_dim=enc_dim, grid=grid, pool=0, action_dim=action_dim, state_dim=action_dim,
                           dim=dim, depth=depth, heads=heads, residual=False, state_head=False,
                           extrinsics_dim=action_dim - 1, use_extrinsics=use_extrinsics, rope_variant="official",
                           norm_eps=norm_eps, max_frames=64, feedback_norm=feedback_norm,
                           state_update="ee_pose" if action_dim == 7 else "add")  # fmt: skip


# -- state dicts ---------------------------------------------------------------------------------


def strip_prefixes(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Official keys -> ours: drop leading ``module.`` / ``backbone.`` (any order, repeated)."""
    out = {}
    for k, v in state.items():
        changed = True
        while changed:
            changed = False
            for p in PREFIXES:
                if k.startswith(p):
                    k, changed = k[len(p) :], True
        out[k] = v
    return out


def to_official(state: dict[str, Tensor], module: nn.Module | None = None) -> dict[str, Tensor]:
    """Our state dict -> the official layout (``module.backbone.`` keys). With ``module``, refuse
    models the official code cannot run (pooled, residual or state-head predictors; our RoPE)."""
    if module is not None:
        problems = incompatibilities(module)
        if problems:
            raise ValueError("this model has no official equivalent: " + "; ".join(problems))
    return {EXPORT_PREFIX + k: v for k, v in state.items()}


def incompatibilities(module: nn.Module) -> list[str]:
    cfg = getattr(module, "cfg", None)
    problems = []
    if getattr(cfg, "rope_variant", "official") != "official":
        problems.append("rope_variant is 'ours' (the official code rotates differently)")
    if isinstance(module, ActionConditionedPredictor):
        if cfg.residual:
            problems.append("residual prediction")
        if cfg.state_dim and cfg.state_head:
            problems.append("a next-state head")
        if cfg.pool and cfg.pool != cfg.grid:
            problems.append(f"pooled patch grid ({cfg.pool}x{cfg.pool})")
    if isinstance(module, VideoEncoder) and cfg.normalize_pixels:
        problems.append("pixel normalisation inside the encoder (official encoders take normalised input)")
    if isinstance(module, VideoEncoder) and cfg.embed_dim:
        problems.append("a per-frame embedding head (official encoders give patch tokens)")
    return problems


def load_official_file(path: str | Path) -> dict[str, dict[str, Tensor]]:
    """An official checkpoint (.pt/.pth via ``torch.load(weights_only=True)``, or .safetensors)
    -> {"encoder": ..., "predictor": ..., "target_encoder": ...} with our key names."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path} (nothing is downloaded: give a local file)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return {"model": strip_prefixes(load_file(str(path)))}
    raw = torch.load(path, map_location="cpu", weights_only=True)
    groups = {
        k: v
        for k, v in raw.items()
        if isinstance(v, dict) and k in ("encoder", "predictor", "target_encoder")
    }
    if not groups:
        raise KeyError(
            f"{path}: no 'encoder' / 'predictor' / 'target_encoder' state dicts (keys: {list(raw)[:10]})"
        )
    return {k: strip_prefixes(v) for k, v in groups.items()}


def _load(module: nn.Module, state: dict[str, Tensor], what: str) -> nn.Module:
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{what}: keys do not match the config: missing {missing[:8]}, unexpected {unexpected[:8]}"
        )
    return module


def official_encoder(state: dict[str, Tensor], cfg: EncoderConfig) -> VideoEncoder:
    return _load(VideoEncoder(cfg), strip_prefixes(state), "encoder").eval()


def official_ac_predictor(state: dict[str, Tensor], cfg: PredictorConfig) -> ActionConditionedPredictor:
    return _load(ActionConditionedPredictor(cfg), strip_prefixes(state), "AC predictor").eval()


def official_mask_predictor(
    state: dict[str, Tensor], enc: EncoderConfig, cfg: MaskPredictorConfig
) -> MaskPredictor:
    return _load(MaskPredictor(enc, cfg), strip_prefixes(state), "pretraining predictor").eval()


class OfficialLayoutEncoder(nn.Module):
    """Our encoder behind the official interface: video (B, C, T, H, W) -> tokens (B, T'*N, D)."""

    def __init__(self, encoder: VideoEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, video: Tensor) -> Tensor:
        return self.encoder(video.transpose(1, 2)).flatten(1, 2)


def vjepa2_ac_planner():
    """The V-JEPA 2-AC planner settings: CEM 800 samples, top 10, 10 iterations, horizon 1,
    momentum 0.15 on mean/std, coordinates clipped (use with the L1 energy)."""
    from planners import CEMConfig

    return CEMConfig(horizon=1, samples=800, elites=10, iterations=10, momentum=0.15, min_std=0.0)


def ac_config_from_state(
    state: dict[str, Tensor], heads: int, grid: int, norm_eps: float = 1e-6
) -> PredictorConfig:
    """The compatibility-mode predictor config matching an official AC state dict's shapes
    (the head count is not in the shapes: pass it; 16 for the published model)."""
    state = strip_prefixes(state)
    dim, enc_dim = state["predictor_embed.weight"].shape
    depth = len({k.split(".")[1] for k in state if k.startswith("predictor_blocks.")})
    action_dim = state["action_encoder.weight"].shape[1]
    return official_ac_predictor_config(enc_dim=enc_dim, grid=grid, dim=dim, depth=depth, heads=heads,
                                        action_dim=action_dim, norm_eps=norm_eps)  # fmt: skip


def import_encoder(checkpoint: str | Path, name: str, out: str | Path, key: str = "target_encoder") -> Path:
    """Write an official encoder as one of our encoder runs (``encoder.safetensors`` +
    ``encoder.json``), usable by ``wm train-ac --encoder`` and ``WorldModel``. The imported encoder
    normalises pixels itself (ImageNet statistics, as the official data pipeline does) and uses the
    official RoPE, so on [0, 1] frames it computes what the official pipeline computes."""
    from dataclasses import asdict

    from worldmodel.world_model import save_encoder

    groups = load_official_file(checkpoint)
    if key not in groups:
        key = "encoder" if "encoder" in groups else next(iter(groups))
    cfg = EncoderConfig(**{**asdict(official_encoder_config(name)), "normalize_pixels": True})
    enc = _load(VideoEncoder(cfg), groups[key], f"{checkpoint}[{key}]")
    save_encoder(enc.state_dict(), cfg, out)
    return Path(out)
