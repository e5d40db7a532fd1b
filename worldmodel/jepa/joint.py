"""The end-to-end JEPA world model: encoder and action-conditioned predictor trained together.

The LeWorldModel recipe on our modules: each frame becomes one embedding (the encoder's
embedding head, ``EncoderConfig.embed_dim``); the predictor, fed the embeddings, actions and
proprio states of frames 0..T-2, predicts the embeddings of frames 1..T-1. Losses:

- teacher-forced next-embedding MSE (every frame predicts the next from true inputs);
- rolled-out MSE: the predictor fed its own predictions for ``rollout_steps`` steps from the first
  frame, scored against the true future embeddings (what planning does);
- SIGReg on all the clip's embeddings (``worldmodel.jepa.sigreg``), multiplied by the batch size
  as LeWM scales the Epps-Pulley statistic: it keeps the embeddings spread out (an isotropic
  Gaussian), which is what stops the jointly trained encoder from collapsing;
- optionally a straightening term: 1 - cos of consecutive latent steps (z_{t+1} - z_t), which
  penalises curved latent trajectories so that Euclidean distance tracks progress;
- L1 on the predicted next proprio states (teacher-forced and rolled out), as ``train-ac``.

No EMA target, no stop-gradient, no reconstruction: gradients of every term reach the encoder.

Legend: B batch, T clip frames, C,H,W image, E embedding width, A model action dim, P state
dim (encoded), M SIGReg directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from worldmodel.encoder import VideoEncoder
from worldmodel.jepa.sigreg import epps_pulley
from worldmodel.predictor import ActionConditionedPredictor


@dataclass(frozen=True)
class JointLossConfig:
    rollout_steps: int = 3  # steps of the rolled-out loss (< clip frames; 0 or 1: off)
    rollout_weight: float = 1.0
    sigreg: float = 0.09  # weight of SIGReg x batch size on the embeddings
    straighten: float = 0.0  # weight of the curvature penalty (0: off)
    state_weight: float = 1.0  # weight of the next-state losses


class JointWorldModel(nn.Module):
    """Encoder (with an embedding head) + predictor; ``forward`` returns the training loss."""

    def __init__(self, encoder: VideoEncoder, predictor: ActionConditionedPredictor, loss: JointLossConfig):
        super().__init__()
        if not encoder.cfg.embed_dim:
            raise ValueError("the end-to-end recipe needs an encoder with an embedding head (embed_dim > 0)")
        if predictor.cfg.enc_dim != encoder.cfg.embed_dim or predictor.cfg.tokens != 1:
            raise ValueError(
                f"the predictor must take one {encoder.cfg.embed_dim}-wide token per frame; it takes "
                f"{predictor.cfg.tokens} of width {predictor.cfg.enc_dim}"
            )
        self.encoder, self.predictor, self.loss_cfg = encoder, predictor, loss
        # the head's BatchNorm removes any constant shift of its input, so the encoder's last
        # LayerNorm bias has no effect (its gradient is zero up to rounding, which Adam would
        # turn into a random walk): it is not trained
        encoder.norm.bias.requires_grad_(False)

    def embed(self, video: Tensor) -> Tensor:
        """video (B, T, C, H, W) in [0, 1] -> embeddings (B, T, 1, E)."""
        B, T = video.shape[:2]
        return self.encoder.embed_frames(video.flatten(0, 1)).view(B, T, 1, -1)

    def forward(
        self, video: Tensor, actions: Tensor, states: Tensor | None, directions: Tensor | None,
        global_batch: int | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:  # fmt: skip
        """video (B, T, C, H, W) in [0, 1], actions (B, T-1, A), states (B, T, P) encoded (None:
        a predictor without states), SIGReg directions (E, M) (None when its weight is 0),
        ``global_batch`` the batch size over all processes when several train (SIGReg is then
        taken over all their embeddings) -> (loss, its parts)."""
        cfg = self.loss_cfg
        if cfg.sigreg > 0 and directions is None:
            raise ValueError(
                "sigreg > 0 needs the random directions (worldmodel.jepa.sigreg.random_directions)"
            )
        z = self.embed(video)  # (B, T, 1, E)
        T = z.shape[1]
        steps = cfg.rollout_steps if cfg.rollout_weight > 0 else 0
        pred_z, pred_s, roll_z, roll_s = self.predictor.predict_and_unroll(z, actions, states, steps)
        tf = F.mse_loss(pred_z, z[:, 1:])  # frames 1..T-1
        parts = {"tf": tf}
        loss = tf
        if pred_s is not None:
            st = (pred_s - states[:, 1:]).abs().mean()
            parts["state"] = st
            loss = loss + cfg.state_weight * st
        if roll_z is not None:  # from frame 0, fed its own predictions
            R = roll_z.shape[1]
            ro = F.mse_loss(roll_z, z[:, 1 : R + 1])
            parts["rollout"] = ro
            loss = loss + cfg.rollout_weight * ro
            if pred_s is not None and roll_s is not None:
                ro_s = (roll_s - states[:, 1 : R + 1]).abs().mean()
                parts["rollout_state"] = ro_s
                loss = loss + cfg.rollout_weight * cfg.state_weight * ro_s
        if cfg.sigreg > 0:
            reg = epps_pulley(z.flatten(0, 2), directions, global_batch=global_batch is not None)
            reg = reg * (global_batch or z.shape[0])
            parts["sigreg"] = reg
            loss = loss + cfg.sigreg * reg
        if cfg.straighten > 0 and T >= 3:
            v = (z[:, 1:] - z[:, :-1]).flatten(2)  # (B, T-1, E) latent steps
            curv = 1.0 - F.cosine_similarity(v[:, 1:], v[:, :-1], dim=-1, eps=1e-6)
            parts["curvature"] = curv.mean()
            loss = loss + cfg.straighten * curv.mean()
        parts["embed_std"] = z.detach().flatten(0, 2).std(dim=0).mean()
        return loss, {k: v.detach() for k, v in parts.items()}
