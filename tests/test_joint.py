"""The end-to-end JEPA world model: trains from pixels, writes a world-model run the planner and
the evaluation take as they are, resumes exactly, runs on two processes; the landscape measures."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from worldmodel.encoder import EncoderConfig, VideoEncoder
from worldmodel.jepa.joint import JointLossConfig, JointWorldModel
from worldmodel.predictor import ActionConditionedPredictor, PredictorConfig
from worldmodel.train.config import LoopConfig
from worldmodel.train.joint import TrainJointConfig, train_joint
from worldmodel.world_model import WorldModel, make_latent_goal_cost


def joint_config(data, out, **loop) -> TrainJointConfig:
    base = dict(steps=6, batch_size=4, log_every=2, ckpt_every=2, progress=False, threads=1)
    base.update(loop)
    return TrainJointConfig(data=data, out=out, preset="tiny", predictor="tiny", embed_dim=16, frames=4,
                            frameskip=2, loss=JointLossConfig(rollout_steps=3, straighten=0.1), readout="ridge",
                            held_out=0.34, loop=LoopConfig(**base))  # fmt: skip


@pytest.fixture(scope="module")
def joint_run(tiny_pipeline, tmp_path_factory):
    out = tmp_path_factory.mktemp("joint") / "run"
    metrics = train_joint(joint_config(tiny_pipeline["data"], out))
    return out, metrics


def test_joint_run_is_a_world_model_the_planner_uses(joint_run):
    run, metrics = joint_run
    assert {"tf", "rollout", "state", "sigreg", "curvature"} <= set(metrics)
    for f in (
        "encoder.safetensors",
        "encoder.json",
        "predictor.safetensors",
        "world_model.json",
        "readout.safetensors",
    ):
        assert (run / f).exists(), f
    assert json.loads((run / "world_model.json").read_text())["encoder_run"] == str(run.resolve())
    wm = WorldModel.load(run)
    frames = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    z = wm.encode(frames)
    assert z.shape == (2, 1, 16) and wm.action_dim == 4  # one embedding per frame; 2 x 2-D actions
    cost = make_latent_goal_cost(wm, z[:1], torch.zeros(1, 4), z[1])
    actions = torch.rand(5, 3, 4) * 2 - 1
    pred, _ = wm.rollout(z[:1], torch.zeros(1, 4), actions)
    torch.testing.assert_close(cost(actions), (pred[:, -1] - z[1]).pow(2).mean(dim=(-2, -1)))
    states, trust = wm.read_state(frames)
    assert states.shape == (2, 4) and trust.shape == (4,)


def test_joint_run_evaluates_with_the_pair_order(joint_run, tmp_path):
    from worldmodel.eval.protocol import EvalConfig, evaluate

    run, _ = joint_run
    cfg = EvalConfig(model=run, rows=("model-latent", "do-nothing"), episodes=2, seeds=(0,), samples=8, elites=2, action_block=2,
                     iterations=2, pair_candidates=8, workers=0, videos=0, out=tmp_path / "ev", progress=False)  # fmt: skip
    summary = evaluate(cfg)["summary"]
    latent = next(s for s in summary if s["row"] == "model-latent")
    assert 0.0 <= latent["pair_order"] <= 1.0
    assert np.isnan(next(s for s in summary if s["row"] == "do-nothing")["pair_order"])
    assert "pair order" in (tmp_path / "ev" / "results.md").read_text()
    with pytest.raises(ValueError, match="set --action-block 2"):  # the model's action block, not another
        evaluate(dataclasses.replace(cfg, action_block=5))


def test_joint_resume_gives_the_same_weights(tiny_pipeline, tmp_path):
    data = tiny_pipeline["data"]
    train_joint(joint_config(data, tmp_path / "straight"))
    train_joint(joint_config(data, tmp_path / "cut", stop_at=3))
    assert not (tmp_path / "cut" / "predictor.safetensors").exists()
    train_joint(joint_config(data, tmp_path / "cut"))
    for f in ("encoder.safetensors", "predictor.safetensors"):
        a, b = load_file(str(tmp_path / "straight" / f)), load_file(str(tmp_path / "cut" / f))
        for k in a:
            assert torch.equal(a[k], b[k]), (f, k)


def test_joint_two_processes_match_one_process(tiny_pipeline, tmp_path, torchrun):
    data = tiny_pipeline["data"]
    train_joint(dataclasses.replace(joint_config(data, tmp_path / "one"), readout="none"))
    torchrun(["train-joint", "--data", str(data), "--out", str(tmp_path / "two"), "--preset", "tiny", "--predictor",
              "tiny", "--embed-dim", "16", "--frames", "4", "--frameskip", "2", "--loss.rollout-steps", "3",
              "--loss.straighten", "0.1", "--readout", "none", "--held-out", "0.34", "--loop.steps", "6",
              "--loop.batch-size", "4", "--loop.log-every", "2", "--loop.ckpt-every", "2", "--loop.parallel", "ddp"],
             29580)  # fmt: skip
    # the same optimisation: the global batch is split, BatchNorm and SIGReg see all of it
    from worldmodel.train.logger import read_metrics

    one, two = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    assert [r["step"] for r in one] == [r["step"] for r in two] == [2, 4, 6]
    for r1, r2 in zip(one, two):
        for k in ("loss", "grad_norm"):  # all-reduced; the parts are logged per process
            assert r1[k] == pytest.approx(r2[k], rel=1e-4), (r1["step"], k)
    a, b = (
        load_file(str(tmp_path / "one" / "predictor.safetensors")),
        load_file(str(tmp_path / "two" / "predictor.safetensors")),
    )
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-5, msg=k)
    # encoder coordinates whose gradient is near zero at init take Adam steps of either sign from
    # rounding differences: they agree to about the learning rate, not to rounding
    a, b = (
        load_file(str(tmp_path / "one" / "encoder.safetensors")),
        load_file(str(tmp_path / "two" / "encoder.safetensors")),
    )
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=3e-3, msg=k)


def test_joint_model_overfits_a_batch_without_collapse():
    torch.manual_seed(0)
    enc = VideoEncoder(EncoderConfig(image_size=16, patch_size=8, tubelet=1, dim=32, depth=1, heads=2, embed_dim=8,
                                     embed_grid=2, embed_hidden=32))  # fmt: skip
    pred = ActionConditionedPredictor(PredictorConfig(enc_dim=8, grid=1, pool=0, action_dim=2, state_dim=0, dim=32,
                                                      depth=1, heads=2))  # fmt: skip
    model = JointWorldModel(enc, pred, JointLossConfig(rollout_steps=2, sigreg=0.09))
    video, actions = torch.rand(8, 3, 3, 16, 16), torch.rand(8, 2, 2) * 2 - 1
    directions = torch.nn.functional.normalize(torch.randn(8, 32), dim=0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss, parts = model(video, actions, None, directions)
        first = first if first is not None else {k: float(v) for k, v in parts.items()}
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert parts["tf"] < 0.2 * first["tf"] + 1e-4 and parts["sigreg"] < first["sigreg"]
    assert parts["embed_std"] > 0.5  # SIGReg spreads the embeddings out instead of collapsing them


def test_joint_refuses_inconsistent_settings(tiny_pipeline, tmp_path):
    data = tiny_pipeline["data"]
    bad = dataclasses.replace(joint_config(data, tmp_path / "x"), loss=JointLossConfig(rollout_steps=5))
    with pytest.raises(ValueError, match="rollout_steps=5 needs frames >= 6"):
        train_joint(bad)
    with pytest.raises(ValueError, match="frames=1"):
        train_joint(dataclasses.replace(joint_config(data, tmp_path / "y"), frames=1))
    # --init-encoder: the pretraining run's shape (its tubelet too) plus the head; its frame size must match
    from worldmodel.train.joint import encoder_config

    init = dataclasses.replace(joint_config(data, tmp_path / "z"), init_encoder=tiny_pipeline["encoder"])
    pre = json.loads((tiny_pipeline["encoder"] / "encoder.json").read_text())
    cfg = encoder_config(init, pre["image_size"])
    assert (cfg.dim, cfg.tubelet, cfg.embed_dim) == (pre["dim"], pre["tubelet"], 16)
    with pytest.raises(ValueError, match=f"encodes {pre['image_size']}px frames"):
        encoder_config(init, 2 * pre["image_size"])
    enc = VideoEncoder(EncoderConfig.tiny())
    with pytest.raises(ValueError, match="embedding head"):
        JointWorldModel(enc, ActionConditionedPredictor(PredictorConfig.tiny()), JointLossConfig())


# -- the landscape measures ----------------------------------------------------------------------


def test_rank_measures_on_known_orders():
    from worldmodel.eval.landscape import pair_agreement, ranks, spearman

    x = np.array([0.1, 0.5, 0.3, 0.9])
    assert spearman(x, x * 3 + 1) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)  # ranks, not values
    assert np.array_equal(ranks(np.array([2.0, 1.0, 2.0])), [1.5, 0.0, 1.5])
    assert pair_agreement(x, x**2) == 1.0 and pair_agreement(x, -x) == 0.0
    assert pair_agreement(np.zeros(4), x) == 0.5  # a flat cost orders nothing: chance
    # one pair of six swapped
    assert pair_agreement(np.array([0.0, 1.0, 3.0, 2.0]), np.array([0.0, 1.0, 2.0, 3.0])) == pytest.approx(
        5 / 6
    )
    assert np.isnan(pair_agreement(x, np.ones(4)))


def test_frame_order_ranks_true_distances(tiny_pipeline, joint_run):
    import gymnasium as gym

    from envs.registration import resolve_task
    from worldmodel.data import LeRobotDataset
    from worldmodel.eval.landscape import frame_order

    run, _ = joint_run
    ds = LeRobotDataset(tiny_pipeline["data"], check_videos=False)
    env = gym.make(resolve_task("pointmass"), image_size=32)
    out = frame_order(WorldModel.load(run), ds, env.unwrapped, goals=3, frames=30, seed=0)
    env.close()
    assert out["goals"] == 3 and out["frames"] == 30 and -1.0 <= out["spearman"] <= 1.0


def test_head_statistics_are_recomputed_over_training_frames(tiny_pipeline, joint_run):
    from worldmodel.data import ClipDataset, ClipSpec, LeRobotDataset
    from worldmodel.train.joint import recalibrate_head
    from worldmodel.world_model import load_encoder

    run, _ = joint_run
    enc = load_encoder(run)
    clips = ClipDataset(LeRobotDataset(tiny_pipeline["data"]), ClipSpec(context=2, future=0), cache=False)
    recalibrate_head(enc, clips, "cpu", frames=64, seed=3)
    bn = enc.head[1]
    idx = torch.randperm(len(clips), generator=torch.Generator().manual_seed(3 + 31))[:32].tolist()
    video = torch.stack([clips[j]["frames"] for j in idx]).flatten(0, 1).float() / 255
    with torch.no_grad():
        from worldmodel.encoder import pool_tokens

        tokens = pool_tokens(enc(video[:, None].expand(-1, enc.cfg.tubelet, -1, -1, -1))[:, 0], enc.cfg.grid,
                             enc.cfg.embed_grid)  # fmt: skip
        hidden = enc.head[0](tokens.flatten(1))
    torch.testing.assert_close(bn.running_mean, hidden.mean(0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_var, hidden.var(0), rtol=1e-4, atol=1e-5)
    assert not enc.training and bn.momentum == 0.1
