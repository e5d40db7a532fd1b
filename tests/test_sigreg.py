"""SIGReg: the Epps-Pulley distance separates Gaussian from collapsed embeddings, minimising it
undoes collapse, and the JEPA loss adds it with its weight."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from worldmodel.encoder import EncoderConfig
from worldmodel.jepa.masks import sample_masks
from worldmodel.jepa.objective import JEPA, JEPAConfig
from worldmodel.jepa.sigreg import epps_pulley, random_directions


def test_distance_is_near_zero_for_a_standard_gaussian_and_large_for_collapse():
    g = torch.Generator().manual_seed(0)
    d = random_directions(32, 64, g)
    assert torch.allclose(d.norm(dim=0), torch.ones(64))
    gauss = epps_pulley(torch.randn(4000, 32, generator=g), d)
    shrunk = epps_pulley(0.1 * torch.randn(4000, 32, generator=g), d)
    point = epps_pulley(torch.zeros(4000, 32), d)
    wide = epps_pulley(3.0 * torch.randn(4000, 32, generator=g), d)
    assert gauss < 0.005
    assert point > 0.3 and shrunk > 0.3  # collapse to a point, or nearly
    assert wide > 20 * gauss  # too spread is penalised too
    # a Gaussian squeezed into 2 of 32 dims (dimensional collapse) is far from isotropic
    low_rank = torch.randn(4000, 2, generator=g) @ torch.randn(2, 32, generator=g) / 2**0.5
    assert epps_pulley(low_rank, d) > 20 * gauss


def test_minimising_it_spreads_collapsed_embeddings():
    g = torch.Generator().manual_seed(1)
    x = (0.01 * torch.randn(512, 8, generator=g)).requires_grad_()
    opt = torch.optim.Adam([x], lr=0.05)
    for _ in range(150):
        loss = epps_pulley(x, random_directions(8, 32, g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    std = x.detach().std(dim=0)
    assert float(std.min()) > 0.6 and float(std.max()) < 1.4, std
    assert float(epps_pulley(x.detach(), random_directions(8, 256, g))) < 0.02


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="directions"):
        epps_pulley(torch.randn(10, 4), torch.randn(5, 3))
    with pytest.raises(ValueError, match="directions"):
        epps_pulley(torch.randn(10), torch.randn(4, 3))


def test_jepa_loss_adds_the_weighted_term():
    torch.manual_seed(0)
    cfg = JEPAConfig(encoder=EncoderConfig.tiny(), sigreg=0.0)
    plain, reg = JEPA(cfg), JEPA(replace(cfg, sigreg=0.5))
    reg.load_state_dict(plain.state_dict())
    video = torch.rand(3, 4, 3, 16, 16)
    masks = sample_masks(3, 2, 2, cfg.masks, torch.Generator().manual_seed(0))
    d = random_directions(cfg.encoder.dim, 16, torch.Generator().manual_seed(1))
    base, _ = plain(video, masks)
    total, stats = reg(video, masks, d)
    assert float(stats["sigreg"]) > 0
    assert torch.allclose(total, base + 0.5 * stats["sigreg"], atol=1e-6)
    with pytest.raises(ValueError, match="directions"):
        reg(video, masks)
