"""Training infrastructure shared by encoder pretraining and predictor training: run
directories, metrics, checkpoints with exact resume, schedules, step-seeded sampling, DDP."""
