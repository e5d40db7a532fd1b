"""worldmodel: video world models in the V-JEPA family, used for planning.

Shape legend used across the code: ``B`` batch, ``T`` frames, ``C,H,W`` image, ``N`` tokens per
frame, ``D`` embedding dim, ``A`` action dim, ``L`` plan horizon, ``S`` sampled candidates
(``P`` proprio state dim, ``E`` its encoded width).

What people look for sits at the top:

- ``encoder``: ``VideoEncoder`` / ``EncoderConfig``, the V-JEPA space-time ViT, and
  ``encode_frames`` for single frames;
- ``predictor``: ``ActionConditionedPredictor`` / ``PredictorConfig`` (V-JEPA 2-AC style, KV-cached
  rollouts);
- ``world_model``: ``WorldModel`` (a finished ``wm train-ac`` or ``wm train-joint`` run) and ``make_latent_goal_cost``,
  the only way a world model reaches a planner;
- ``policy``: ``GoalPolicy``, the goal-conditioned policy on a world model's latents (the
  amortised planner, ``wm train-policy``);
- ``official``: official V-JEPA 2 / 2-AC checkpoints in these modules.

Below them: ``nn`` (transformer blocks, RoPE, global-batch BatchNorm), ``jepa`` (the training
objectives: masked pretraining, the end-to-end world model (``joint``), masks, SIGReg),
``readout`` (the goal-state read-out), ``data`` (LeRobot datasets, ``wm info``, clips, frame
cache, video, stored features), ``train`` (the trainers on one skeleton, and the policy's fit),
``eval`` (the protocol, the offline evaluation, executors, paired comparison, statistics,
reports, the cost landscape), ``pipeline`` (what
``wm demo`` and the benchmark share) and ``cli`` (the ``wm`` command).

The names below are importable from ``worldmodel`` directly; each is loaded on first use, so
``import worldmodel`` costs nothing and a planning user never loads the trainers.
"""

from __future__ import annotations

_API = {
    "VideoEncoder": "worldmodel.encoder",
    "EncoderConfig": "worldmodel.encoder",
    "encode_frames": "worldmodel.encoder",
    "ActionConditionedPredictor": "worldmodel.predictor",
    "PredictorConfig": "worldmodel.predictor",
    "WorldModel": "worldmodel.world_model",
    "make_latent_goal_cost": "worldmodel.world_model",
    "load_encoder": "worldmodel.world_model",
    "LeRobotDataset": "worldmodel.data",
    "LeRobotWriter": "worldmodel.data",
    "ClipDataset": "worldmodel.data",
    "ClipSpec": "worldmodel.data",
    "DatasetError": "worldmodel.data",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'worldmodel' has no attribute {name!r}")
