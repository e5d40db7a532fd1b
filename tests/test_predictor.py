"""The action-conditioned predictor: causality, cached rollouts, overfitting; the world model."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from worldmodel.encoder import pool_tokens
from worldmodel.nn.transformer import DecodeCache
from worldmodel.predictor import ActionConditionedPredictor, KVCache, PredictorConfig
from worldmodel.train.config import LoopConfig
from worldmodel.train.logger import read_metrics
from worldmodel.train.predictor import TrainACConfig, sequence_loss, train_ac
from worldmodel.world_model import WorldModel, make_latent_goal_cost


def random_predictor(seed=0, **kw) -> ActionConditionedPredictor:
    torch.manual_seed(seed)
    m = ActionConditionedPredictor(PredictorConfig.tiny(**kw)).eval()
    for p in m.predictor_proj.parameters():  # leave the copy-last initialisation
        torch.nn.init.normal_(p, std=0.1)
    return m


def inputs(B=3, T=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(B, T, 4, 32, generator=g),
        torch.randn(B, T, 2, generator=g),
        torch.randn(B, T, 4, generator=g),
    )


def test_shapes_and_pooling():
    m = random_predictor()
    z, a, s = inputs()
    pz, ps = m(z, a, s)
    assert pz.shape == (3, 5, 4, 32) and ps.shape == (3, 5, 4)
    with pytest.raises(ValueError, match="patch tokens per frame"):
        m(torch.randn(3, 5, 9, 32), a, s)
    x = torch.arange(16.0).view(1, 16, 1)  # a 4x4 grid
    pooled = pool_tokens(x, 4, 2)
    assert pooled.shape == (1, 4, 1) and pooled[0, 0, 0] == (0 + 1 + 4 + 5) / 4


def test_changing_a_future_action_never_changes_earlier_predictions():
    m = random_predictor()
    z, a, s = inputs()
    base, base_s = m(z, a, s)
    a2 = a.clone()
    a2[:, 3] += 5.0  # the action after frame 3
    out, out_s = m(z, a2, s)
    torch.testing.assert_close(out[:, :3], base[:, :3], rtol=0, atol=0)
    torch.testing.assert_close(out_s[:, :3], base_s[:, :3], rtol=0, atol=0)
    assert not torch.allclose(out[:, 3], base[:, 3])
    # the same for a future frame's features and state
    z2, s2 = z.clone(), s.clone()
    z2[:, 4] += 1.0
    s2[:, 4] += 1.0
    torch.testing.assert_close(m(z2, a, s2)[0][:, :4], base[:, :4], rtol=0, atol=0)


def test_cached_step_equals_full_pass():
    m = random_predictor()
    z, a, s = inputs()
    full, full_s = m(z, a, s)
    cache = KVCache(m.cfg.depth)
    first, _ = m.step(z[:, :2], a[:, :2], s[:, :2], cache)  # two frames at once, then one by one
    rest = [m.step(z[:, t : t + 1], a[:, t : t + 1], s[:, t : t + 1], cache)[0] for t in range(2, 5)]
    torch.testing.assert_close(torch.cat([first, *rest], dim=1), full, rtol=1e-5, atol=1e-5)


def test_cached_rollout_equals_uncached_autoregression():
    m = random_predictor()
    z, a, s = inputs(B=1, T=2)
    S, H = 4, 3
    actions = torch.randn(S, H, 2, generator=torch.Generator().manual_seed(5))
    past = a[0, :1]
    pred, pred_s = m.rollout(z[0], s[0], actions, past_actions=past)
    assert pred.shape == (S, H, 4, 32) and pred_s.shape == (S, H, 4)
    for i in range(S):  # uncached: re-run the full sequence each step with predictions fed back
        zs, ss = z[0].clone(), s[0].clone()
        acts = torch.cat([past, actions[i]])
        for h in range(H):
            out, out_s = m(zs[None], acts[None, : zs.shape[0]], ss[None])
            zs = torch.cat([zs, out[0, -1:]])
            ss = torch.cat([ss, out_s[0, -1:]])
            torch.testing.assert_close(pred[i, h], out[0, -1], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(pred_s[i, h], out_s[0, -1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "options",
    [{}, {"rope_variant": "official"}, {"state_dim": 0}, {"feedback_norm": True}, {"grid": 4, "pool": 2}],
)
@pytest.mark.parametrize("context", [1, 3])
def test_planning_rollout_equals_the_training_unroll(options, context):
    """``rollout`` decodes token-major with RoPE folded into the qkv weights and key/value buffers
    written in place; ``unroll`` runs the training blocks with a concatenating cache: equal."""
    cfg = dataclasses.replace(PredictorConfig.tiny(action_dim=3), heads=2, **options)
    torch.manual_seed(0)
    m = ActionConditionedPredictor(cfg).eval()
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.1)
    g = torch.Generator().manual_seed(1)
    z0 = torch.randn(context, cfg.tokens, cfg.enc_dim, generator=g)
    s0 = torch.randn(context, cfg.state_dim, generator=g) if cfg.state_dim else None
    actions = torch.randn(6, 4, 3, generator=g)
    past = torch.randn(context - 1, 3, generator=g)
    fast, fast_s = m.rollout(z0, s0, actions, past if context > 1 else None)
    with torch.no_grad():
        cache = KVCache(cfg.depth)
        if context > 1:
            m.step(z0[None, :-1], past[None], None if s0 is None else s0[None, :-1], cache)
        s_last = None if s0 is None else s0[-1:].expand(6, 1, -1)
        slow, slow_s = m.unroll(z0[-1:].expand(6, 1, -1, -1), s_last, actions, cache.expand(6))
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    if cfg.state_dim:
        torch.testing.assert_close(fast_s, slow_s, rtol=1e-5, atol=1e-6)
    else:
        assert fast_s is None and slow_s is None


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"state_dim": 0},
        {"state_head": False, "state_dim": 3},
        {"feedback_norm": True},
        {"rope_variant": "official"},
    ],
)
def test_training_loss_goes_on_from_the_teacher_forced_pass_and_equals_a_separate_rollout(options):
    """sequence_loss skips the last frame's teacher-forced prediction (it has no target) and starts
    the rollout from the teacher-forced first prediction and its cached keys: the loss and every
    gradient equal those of a full teacher-forced pass plus a rollout run from scratch."""
    cfg = dataclasses.replace(PredictorConfig.tiny(action_dim=3), heads=2, **options)
    torch.manual_seed(0)
    m = ActionConditionedPredictor(cfg)
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.1)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(4, 6, cfg.tokens, cfg.enc_dim, generator=g)
    actions = torch.randn(4, 6, 3, generator=g)
    states = torch.randn(4, 6, max(cfg.state_dim, 1), generator=g)[..., : cfg.state_dim]
    run = TrainACConfig(data=Path("-"), encoder=Path("-"), use_state=bool(cfg.state_dim), rollout_steps=4)
    loss, parts = sequence_loss(m, z, actions, states, run)
    grads = torch.autograd.grad(loss, list(m.parameters()), allow_unused=True)

    s_in = states if cfg.state_dim else None
    pred_z, pred_s = m(z, actions, s_in)
    want = {"tf": (pred_z[:, :-1] - z[:, 1:]).abs().mean()}
    if pred_s is not None:
        want["state"] = (pred_s[:, :-1] - states[:, 1:]).abs().mean()
    roll_z, roll_s = m.unroll(z[:, :1], None if s_in is None else s_in[:, :1], actions[:, :4])
    want["rollout"] = (roll_z - z[:, 1:5]).abs().mean()
    if pred_s is not None:
        want["rollout_state"] = (roll_s - states[:, 1:5]).abs().mean()
    assert parts.keys() == want.keys()
    for k in want:
        torch.testing.assert_close(parts[k], want[k].detach(), rtol=1e-5, atol=1e-6)
    ref = torch.autograd.grad(sum(want.values()), list(m.parameters()), allow_unused=True)
    for (name, _), a, b in zip(m.named_parameters(), grads, ref, strict=True):
        if a is None or b is None:
            assert a is None and b is None, name
        else:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)


def test_kv_cache_keeps_its_first_frames_and_refuses_more_than_it_holds():
    m = random_predictor()
    z, actions, states = inputs(T=4)
    cache = KVCache(m.cfg.depth)
    m(z, actions, states, cache=cache)
    first = cache.first(1)
    assert first.frames == 1 and first.tokens == cache.tokens // 4
    with pytest.raises(ValueError, match="holds 4 frames"):
        cache.first(5)
    with pytest.raises(ValueError, match="empty cache"):
        m(z, actions, states, cache=cache)


def test_decode_cache_refuses_more_tokens_than_it_has_room_for():
    cache = DecodeCache(batch=2, capacity=4)
    k = torch.zeros(2, 1, 3, 8)
    cache.extend(0, k, k)
    cache.advance(3, 1)
    with pytest.raises(ValueError, match="decode cache full: 6 tokens, room for 4"):
        cache.extend(0, k, k)


def test_predictor_overfits_a_batch():
    torch.manual_seed(0)
    m = ActionConditionedPredictor(PredictorConfig.tiny())
    z, a, s = inputs(B=8, T=4)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        pz, ps = m(z, a, s)
        loss = (pz[:, :-1] - z[:, 1:]).abs().mean() + (ps[:, :-1] - s[:, 1:]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.3 * losses[0]


# -- training runs ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder_run(tiny_pipeline) -> tuple[Path, Path]:
    return tiny_pipeline["data"], tiny_pipeline["encoder"]


def ac_config(data: Path, enc: Path, out: Path, **loop) -> TrainACConfig:
    base = dict(steps=6, batch_size=4, log_every=2, ckpt_every=2, progress=False, threads=1)
    base.update(loop)
    return TrainACConfig(data=data, encoder=enc, out=out, preset="tiny", pool=0, frameskip=2, frames=4,
                         rollout_steps=2, readout_steps=200, loop=LoopConfig(**base))  # fmt: skip


@pytest.mark.parametrize("readout_weight", [0.0, 1.0])
def test_train_ac_resume_gives_the_same_weights(encoder_run, tmp_path, readout_weight):
    data, enc = encoder_run

    def cfg(out, **loop):
        return dataclasses.replace(
            ac_config(data, enc, out, **loop), readout_weight=readout_weight, readout="ridge"
        )

    train_ac(cfg(tmp_path / "straight"))
    train_ac(cfg(tmp_path / "cut", stop_at=3))
    readout = tmp_path / "cut" / "loss_readout.safetensors"
    assert readout.exists() == (readout_weight > 0)  # fitted once, before the first step
    before = load_file(str(readout)) if readout_weight else {}
    train_ac(cfg(tmp_path / "cut"))
    a = load_file(str(tmp_path / "straight" / "predictor.safetensors"))
    b = load_file(str(tmp_path / "cut" / "predictor.safetensors"))
    for k in a:
        assert torch.equal(a[k], b[k]), k
    parts = {"tf", "rollout", "state"} | ({"readout"} if readout_weight else set())
    assert parts <= set(read_metrics(tmp_path / "straight")[-1])
    for k, v in before.items():  # the resumed run used the saved read-out, not a refit
        assert torch.equal(v, load_file(str(readout))[k])


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_train_ac_two_processes_match_one_process(encoder_run, tmp_path, torchrun, parallel):
    data, enc = encoder_run
    train_ac(ac_config(data, enc, tmp_path / "one"))
    torchrun(["train-ac", "--data", str(data), "--encoder", str(enc), "--out", str(tmp_path / "two"), "--preset",
              "tiny", "--pool", "0", "--frameskip", "2", "--frames", "4", "--rollout-steps", "2", "--readout-steps", "200", "--loop.steps", "6",
              "--loop.batch-size", "4", "--loop.log-every", "2", "--loop.ckpt-every", "2", "--loop.parallel", parallel],
             29574 + (parallel == "fsdp"))  # fmt: skip
    a = load_file(str(tmp_path / "one" / "predictor.safetensors"))
    b = load_file(str(tmp_path / "two" / "predictor.safetensors"))
    assert a.keys() == b.keys()
    for k in a:  # the global batch is split across the processes: same optimisation
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-5, msg=k)


def test_world_model_cost(encoder_run, tmp_path):
    data, enc = encoder_run
    train_ac(ac_config(data, enc, tmp_path / "ac"))
    wm = WorldModel.load(tmp_path / "ac")
    frames = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    z = wm.encode(frames)
    assert z.shape == (2, 16, 32) and wm.action_dim == 4  # tiny preset at 32 px: a 4x4 grid
    states = torch.zeros(1, 4)
    cost = make_latent_goal_cost(wm, z[:1], states, z[1])
    actions = torch.rand(7, 3, 4) * 2 - 1
    c = cost(actions)
    assert c.shape == (7,) and torch.isfinite(c).all()
    # the cost is the distance of the final predicted embedding to the goal's
    pred, _ = wm.rollout(z[:1], states, actions)
    torch.testing.assert_close(c, (pred[:, -1] - z[1]).pow(2).mean(dim=(-2, -1)))
    with pytest.raises(ValueError, match="goal_state"):
        make_latent_goal_cost(wm, z[:1], states, z[1], state_weight=1.0)
    with_state = make_latent_goal_cost(wm, z[:1], states, z[1], goal_state=torch.ones(4), state_weight=1.0)
    assert (with_state(actions) > c).all()


def test_ridge_readout_reads_out_a_linear_state_and_weights_dimensions():
    from worldmodel.readout.ridge import RidgeReadout

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 40)).astype(np.float32)
    y = np.stack([x[:, :3].sum(1), rng.normal(size=600)], axis=1)  # one decodable dim, one noise dim
    probe = RidgeReadout.fit(x, y)
    pred = probe(torch.from_numpy(x[:50]))
    assert float((pred[:, 0] - torch.from_numpy(y[:50, 0])).abs().max()) < 0.05
    w = probe.dim_weights
    assert w[0] > 0.99 and w[1] < 0.1  # trust follows held-out R^2


def test_world_model_decodes_goal_state_and_weighted_cost(encoder_run, tmp_path):
    data, enc = encoder_run
    train_ac(ac_config(data, enc, tmp_path / "ac"))
    wm = WorldModel.load(tmp_path / "ac")
    assert wm.readout is not None  # fitted at the end of train-ac
    frames = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    states, weights = wm.read_state(frames)
    assert states.shape == (2, 4) and weights.shape == (4,) and ((weights >= 0) & (weights <= 1)).all()
    z = wm.encode(frames)
    s0 = torch.zeros(1, 4)
    w = torch.tensor([1.0, 0.0, 0.0, 0.0])
    cost = make_latent_goal_cost(
        wm, z[:1], s0, z[1], goal_state=torch.ones(4), state_weight=2.0, state_dims=w
    )
    actions = torch.rand(5, 3, 4) * 2 - 1
    pred, pstates = wm.rollout(z[:1], s0, actions)
    latent = (pred[:, -1] - z[1]).pow(2).mean(dim=(-2, -1))
    torch.testing.assert_close(cost(actions), latent + 2.0 * (pstates[:, -1, 0] - 1.0).abs())


def test_angle_dims_are_encoded_inside_and_wrapped_in_the_cost(encoder_run, tmp_path):
    data, enc = encoder_run
    cfg = dataclasses.replace(ac_config(data, enc, tmp_path / "ac"), state_angles=(0,), readout="ridge")
    train_ac(cfg)
    wm = WorldModel.load(tmp_path / "ac")
    assert wm.predictor.cfg.state_dim == 5 and wm.state_codec.angles == (0,)  # x seen as (cos, sin)
    frames = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    states, weights = wm.read_state(frames)
    assert states.shape == (2, 4) and weights.shape == (4,)  # env units out
    z = wm.encode(frames)
    s0 = torch.tensor([[3.0, 0.0, 0.0, 0.0]])
    actions = torch.rand(6, 3, 4) * 2 - 1
    _, pstates = wm.rollout(z[:1], s0, actions)
    assert pstates.shape == (6, 3, 4) and bool((pstates[..., 0].abs() <= math.pi + 1e-5).all())
    goal = torch.tensor([1.0, 0.5, 0.0, 0.0])
    costs = [make_latent_goal_cost(wm, z[:1], s0, z[1], goal_state=g, state_weight=1.0)(actions)
             for g in (goal, goal + torch.tensor([2 * math.pi, 0, 0, 0]))]  # fmt: skip
    torch.testing.assert_close(costs[0], costs[1])  # a full turn is no error


def test_goal_read_out_takes_whole_episodes_up_to_its_frame_count_and_memory(encoder_run, monkeypatch):
    import worldmodel.readout.fit as fit
    from worldmodel.data import LeRobotDataset
    from worldmodel.readout.codec import StateCodec
    from worldmodel.world_model import load_encoder

    data, enc = encoder_run
    rows = []
    monkeypatch.setattr(fit, "fit_readout", lambda kind, x, y, **kw: rows.append(x.shape))
    ds, encoder = LeRobotDataset(data, check_videos=False), load_encoder(enc, "cpu")
    codec, total, longest = StateCodec(4), ds.num_frames, int(np.max(ds.lengths))

    def fitted_rows(frames: int) -> tuple[int, int]:
        fit.fit_goal_readout(ds, encoder, "cpu", codec, kind="ridge", frames=frames, mlp_steps=1)
        return rows[-1]

    assert fitted_rows(10**6)[0] == total  # every frame, not more
    n, features = fitted_rows(50)
    assert 50 <= n < 50 + longest  # whole episodes until the count is reached
    monkeypatch.setattr(fit, "READOUT_BYTES", 4 * features * 30)  # room for 30 frames' features
    assert 30 <= fitted_rows(10**6)[0] < 30 + longest


def test_the_feature_build_hands_the_read_out_its_episodes_encoded_once(encoder_run, tmp_path):
    from worldmodel.data import LeRobotDataset
    from worldmodel.data.features import FeatureStore
    from worldmodel.readout.codec import StateCodec
    from worldmodel.readout.fit import fit_goal_readout, readout_positions
    from worldmodel.world_model import load_encoder

    data, enc = encoder_run
    ds, encoder, codec = LeRobotDataset(data, check_videos=False), load_encoder(enc, "cpu"), StateCodec(4)
    size = encoder.cfg.grid**2 * encoder.cfg.dim
    positions = readout_positions(ds, encoder, 60)
    episodes = [int(ds.episode_index[p]) for p in positions]
    full_grid = dict.fromkeys(episodes)
    store = FeatureStore.build(ds, encoder, 2, tmp_path / "f", progress=False, full_grid=full_grid)
    assert sorted(full_grid) == sorted(episodes) and all(z.shape[1] == size for z in full_grid.values())
    pooled = store.normalize(pool_tokens(full_grid[episodes[0]].view(-1, encoder.cfg.grid**2, encoder.cfg.dim),
                                         encoder.cfg.grid, 2))  # fmt: skip
    rows = ds.episode_rows(positions[0])
    stored = store.rows(np.arange(rows.start, rows.stop))  # float16
    torch.testing.assert_close(pooled, stored, atol=2e-2, rtol=0)
    fit = dict(kind="ridge", frames=60, mlp_steps=1)
    once = fit_goal_readout(ds, encoder, "cpu", codec, encoded=full_grid, **fit)
    twice = fit_goal_readout(ds, encoder, "cpu", codec, **fit)
    for name, value in twice.tensors().items():
        torch.testing.assert_close(once.tensors()[name], value, rtol=0, atol=0)
