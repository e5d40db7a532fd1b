"""The state encoding (angles as cos/sin) and the non-linear state read-out."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from worldmodel.readout.codec import StateCodec
from worldmodel.readout.fit import fit_readout, readout_from_tensors
from worldmodel.readout.mlp import MLPReadout
from worldmodel.readout.ridge import RidgeReadout


def test_codec_round_trips_and_wraps_angle_errors():
    codec = StateCodec(4, angles=(0, 1))
    s = torch.tensor([[math.pi - 0.01, -2.5, 3.0, -7.0], [0.2, 0.0, 0.0, 1.0]])
    e = codec.encode(s)
    assert e.shape == (2, 6)
    assert torch.allclose(e[0, :2], torch.tensor([math.cos(math.pi - 0.01), math.sin(math.pi - 0.01)]))
    assert torch.allclose(codec.decode(e), s, atol=1e-6)
    # across the +-pi seam the error is the short way round, other dims are plain
    a = torch.tensor([math.pi - 0.01, 0.0, 1.0, 1.0])
    b = torch.tensor([-math.pi + 0.01, 2 * math.pi, -1.0, 1.0])
    assert torch.allclose(codec.difference(a, b), torch.tensor([0.02, 0.0, 2.0, 0.0]), atol=1e-5)
    # weights of an angle pair fold to the lower one
    assert torch.equal(
        codec.raw_weights(torch.tensor([0.9, 0.5, 1.0, 0.2, 0.0, 0.3])), torch.tensor([0.5, 0.2, 0.0, 0.3])
    )


def test_codec_without_angles_is_the_identity_and_bad_dims_raise():
    s = torch.randn(3, 4)
    assert torch.equal(StateCodec(4).encode(s), s) and torch.equal(StateCodec(4).decode(s), s)
    with pytest.raises(ValueError, match="angle dims"):
        StateCodec(4, angles=(4,))
    with pytest.raises(ValueError, match="width 6"):
        StateCodec(4, angles=(0, 1)).decode(torch.zeros(2, 4))


def test_mlp_read_out_learns_a_non_linear_state_that_ridge_cannot():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 16)).astype(np.float32)
    # dim 0 is even in x0 (no linear part at all), dim 1 is noise
    y = np.stack([np.cos(2 * x[:, 0]), rng.normal(size=3000)], axis=1).astype(np.float32)
    mlp, ridge = fit_readout("mlp", x, y), fit_readout("ridge", x, y)
    assert isinstance(mlp, MLPReadout) and isinstance(ridge, RidgeReadout)
    test = torch.from_numpy(x[-600:])  # the fit's own held-out slice
    err_mlp = float((mlp(test)[:, 0] - torch.from_numpy(y[-600:, 0])).abs().mean())
    err_ridge = float((ridge(test)[:, 0] - torch.from_numpy(y[-600:, 0])).abs().mean())
    assert err_mlp < 0.3 * err_ridge, (err_mlp, err_ridge)
    assert mlp.dim_weights[0] > 0.8 and mlp.dim_weights[1] == 0.0  # trust follows held-out R^2
    # the noise dim is not read (its screening R^2 is below 0.5): it is the training mean
    assert mlp.kept.tolist() == [True, False]
    assert torch.allclose(mlp(test)[:, 1], mlp.y_mean[1].expand(600))
    # saved tensors rebuild the same read-out
    again = readout_from_tensors("mlp", mlp.tensors())
    assert torch.equal(again(test), mlp(test))
    with pytest.raises(ValueError, match="unknown state read-out"):
        fit_readout("knn", x, y)
    # auto keeps whichever reads the held-out slice better
    assert isinstance(fit_readout("auto", x, y), MLPReadout)
    linear = np.stack([x[:, :3].sum(1), x[:, 3]], axis=1)
    assert isinstance(fit_readout("auto", x, linear), RidgeReadout)


def test_auto_read_out_keeps_the_mlp_when_it_reads_better_even_at_a_high_ridge_r2():
    # nearly linear: the ridge reads R^2 ~0.995, which no R^2 margin over a short fit could beat;
    # the full MLP fit reads the small curvature too and misreads less on the held-out slice
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 16)).astype(np.float32)
    y = (x[:, 0] + 0.05 * x[:, 1] ** 2)[:, None].astype(np.float32)
    ridge, auto = fit_readout("ridge", x, y), fit_readout("auto", x, y)
    assert float(ridge.r2[0]) > 0.99
    assert isinstance(auto, MLPReadout) and float(auto.r2[0]) > float(ridge.r2[0])
    test = torch.from_numpy(x[-600:])
    truth = torch.from_numpy(y[-600:, 0])
    assert (auto(test)[:, 0] - truth).abs().mean() < (ridge(test)[:, 0] - truth).abs().mean()


def test_task_angle_dims_come_from_the_task():
    from envs.registration import task_angle_dims

    assert task_angle_dims("wm/Reacher-v0") == (0, 1)
    assert task_angle_dims("wm/PointMass-v0") == ()
    assert task_angle_dims("my_robot") == () and task_angle_dims(None) == ()
