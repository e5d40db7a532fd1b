"""The two trainers on one skeleton: ``pretrain`` (the V-JEPA encoder, ``wm pretrain``) and
``predictor`` (the action-conditioned predictor on a frozen encoder's features, ``wm train-ac``).

Both run ``loop.run_training`` with typed settings (``config``), a run directory with metrics
(``logger``), checkpoints with exact resume (``checkpoint``), step-seeded batches (``sampling``),
device, precision and process set-up (``runtime``), and DDP / FSDP2 (``parallel``).
"""
