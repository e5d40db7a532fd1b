"""Building blocks shared by the encoder and the predictors: pre-norm transformer blocks on SDPA
with an optional key/value cache (``transformer``), and 3D rotary position embedding (``rope``)."""
