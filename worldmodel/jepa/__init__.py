"""V-JEPA masked latent pretraining: the objective (context encoder, mask predictor, EMA target;
``objective``), multi-block 3D tube masks (``masks``) and the SIGReg anti-collapse term (``sigreg``)."""
