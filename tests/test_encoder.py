"""Video encoder, 3D RoPE, tube masks and the JEPA objective."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from worldmodel.encoder import EncoderConfig, VideoEncoder
from worldmodel.eval.representation import feature_std, linear_probe, motion_change, sensitivity
from worldmodel.jepa.masks import BlockSpec, MaskConfig, patch_motion, sample_masks
from worldmodel.jepa.objective import JEPA, JEPAConfig, MaskPredictorConfig
from worldmodel.nn.rope import apply_rope, grid_positions, rope_angles


@pytest.mark.parametrize("pos_embed", ["rope", "learned", "sincos"])
def test_encoder_shapes(pos_embed):
    cfg = EncoderConfig(image_size=16, patch_size=8, dim=32, depth=2, heads=2, pos_embed=pos_embed)
    enc = VideoEncoder(cfg)
    video = torch.rand(3, 4, 3, 16, 16)  # (B, T, C, H, W)
    z = enc(video)
    assert z.shape == (3, 2, 4, 32)  # (B, T', N, D)
    keep = torch.tensor([[0, 2, 5], [1, 3, 7], [4, 5, 6]])
    assert enc(video, keep=keep).shape == (3, 3, 32)  # (B, K, D)


def test_encoder_rejects_bad_input():
    enc = VideoEncoder(EncoderConfig.tiny())
    with pytest.raises(ValueError, match="not divisible by tubelet"):
        enc(torch.rand(1, 3, 3, 16, 16))
    with pytest.raises(ValueError, match="expected frames"):
        enc(torch.rand(1, 2, 3, 32, 32))
    with pytest.raises(ValueError, match="multiple of patch_size"):
        EncoderConfig(image_size=30, patch_size=8)


@pytest.mark.parametrize("pos_embed", ["rope", "learned", "sincos"])
def test_masked_encoding_sees_only_kept_tokens(pos_embed):
    """Encoding a subset sees only those patches (other tokens cannot leak in), each at its own
    position, for every position embedding."""
    torch.manual_seed(0)
    enc = VideoEncoder(dataclasses.replace(EncoderConfig.tiny(), depth=2, pos_embed=pos_embed))
    video = torch.rand(1, 2, 3, 16, 16)
    keep = torch.tensor([[0, 3]])
    out = enc(video, keep=keep)
    video2 = video.clone()
    video2[..., 0:8, 8:16] = torch.rand(1, 2, 3, 8, 8)  # change patch 1, which is not kept
    torch.testing.assert_close(enc(video2, keep=keep), out)
    # the order of the kept indices only permutes the outputs ...
    torch.testing.assert_close(enc(video, keep=torch.tensor([[3, 0]])), out.flip(1))
    # ... but the positions count: the same two patches swapped between positions 0 and 3 read differently
    swapped = video.clone()
    swapped[..., 0:8, 0:8], swapped[..., 8:16, 8:16] = video[..., 8:16, 8:16], video[..., 0:8, 0:8]
    assert not torch.allclose(enc(swapped, keep=keep), out.flip(1), atol=1e-4)


def test_rope_scores_depend_only_on_relative_position():
    torch.manual_seed(0)
    q, k = torch.randn(12), torch.randn(12)
    p1, p2 = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[2.0, 0.0, 5.0]])
    shift = torch.tensor([[3.0, -1.0, 4.0]])

    def score(a, b):
        return (apply_rope(q[None], rope_angles(a, 12)) * apply_rope(k[None], rope_angles(b, 12))).sum()

    torch.testing.assert_close(score(p1, p2), score(p1 + shift, p2 + shift))
    assert not torch.isclose(score(p1, p2), score(p1, p2 + shift))
    torch.testing.assert_close(
        apply_rope(q[None], rope_angles(torch.zeros(1, 3), 12)), q[None]
    )  # 0 = identity
    assert grid_positions(2, 2, 3).shape == (12, 3)


def test_tube_masks_partition_tokens_and_span_time():
    g = torch.Generator().manual_seed(0)
    cfg = MaskConfig(kinds=(BlockSpec(4, 0.15), BlockSpec(1, 0.6)))
    out = sample_masks(batch=6, grid=8, tubelets=3, cfg=cfg, generator=g)
    assert len(out) == 2
    for ctx, tgt in out:
        assert ctx.shape[0] == tgt.shape[0] == 6 and ctx.shape[1] >= 4 and tgt.shape[1] >= 1
        for c, t in zip(ctx, tgt):
            assert not set(c.tolist()) & set(t.tolist())  # disjoint
            frames = {int(i) // 64 for i in t}
            assert frames == {0, 1, 2}  # every tubelet has targets: a tube
            spatial = [{int(i) % 64 for i in t if int(i) // 64 == f} for f in range(3)]
            assert spatial[0] & spatial[1] & spatial[2]  # the same positions through time
    big = out[1][1].shape[1] / (3 * 64)
    assert 0.3 < big < 0.8  # one block at 60% of the frame (truncated to the batch minimum)
    again = sample_masks(6, 8, 3, cfg, torch.Generator().manual_seed(0))
    for (c1, t1), (c2, t2) in zip(out, again):
        assert torch.equal(c1, c2) and torch.equal(t1, t2)


def test_motion_weighted_masks_land_on_moving_patches():
    video = torch.zeros(16, 4, 3, 32, 32)
    video[:, 1::2, :, 0:8, 0:8] = 1.0  # only patch 0 (of a 4x4 grid) changes
    motion = patch_motion(video, 8)
    assert motion.shape == (16, 16) and motion[:, 0].min() > 0 and motion[:, 1:].max() == 0
    cfg_u = MaskConfig(kinds=(BlockSpec(1, 0.07),), motion_weight=0.0)
    cfg_m = MaskConfig(kinds=(BlockSpec(1, 0.07),), motion_weight=50.0)

    def hit_rate(cfg):
        hits = 0
        for s in range(10):
            ((_, tgt),) = sample_masks(16, 4, 1, cfg, torch.Generator().manual_seed(s), motion)
            hits += sum(0 in t.tolist() for t in tgt)
        return hits / 160

    assert hit_rate(cfg_m) > 2 * hit_rate(cfg_u)


def test_jepa_overfits_a_batch():
    torch.manual_seed(0)
    model = JEPA(
        JEPAConfig(
            encoder=EncoderConfig.tiny(), predictor=MaskPredictorConfig(dim=64, depth=2, heads=2), sigreg=0.0
        )
    )
    video = torch.rand(4, 4, 3, 16, 16)
    masks = sample_masks(4, 2, 2, model.cfg.masks, torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    first = None
    for _ in range(100):
        loss, _ = model(video, masks)  # the target encoder stays fixed: a pure regression
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else float(loss.detach())
    assert float(loss.detach()) < 0.5 * first


def test_ema_update_moves_target_towards_encoder():
    model = JEPA(JEPAConfig.tiny())
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.target_encoder.parameters()]
    model.update_target(0.9)
    for b, t, c in zip(before, model.target_encoder.parameters(), model.encoder.parameters()):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * c)
    assert model.momentum(0, 100) == pytest.approx(0.996) and model.momentum(100, 100) == pytest.approx(
        0.9999
    )


def test_representation_measures():
    z = torch.randn(32, 5, 16)
    assert sensitivity(z, z) == 0.0
    assert sensitivity(z, torch.randn(32, 5, 16)) > 1.0  # unrelated pairs change more than the spread
    step = torch.randn(32, 5, 16)
    assert motion_change(z, z) == 0.0
    assert motion_change(z, z + step) < motion_change(z, z + 3 * step)  # grows with the change
    scaled = motion_change(2 * z + 1, 2 * (z + step) + 1)  # per-token scale and offset: no effect
    assert scaled == pytest.approx(motion_change(z, z + step), rel=1e-4)
    assert feature_std(torch.ones(8, 16) * torch.arange(16.0)) == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 20))
    y = x @ rng.normal(size=(20, 2))
    good = linear_probe(x[:300], y[:300], x[300:], y[300:])
    assert good["r2"] > 0.99
    bad = linear_probe(x[:300], rng.normal(size=(300, 2)), x[300:], rng.normal(size=(100, 2)))
    assert bad["r2"] < 0.1
