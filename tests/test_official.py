"""Official V-JEPA 2 checkpoints: fixture outputs reproduced, published shapes built, round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from worldmodel.encoder import EncoderConfig, VideoEncoder
from worldmodel.jepa.objective import MaskPredictor
from worldmodel.official import (
    OfficialLayoutEncoder,
    incompatibilities,
    load_official_file,
    official_ac_predictor,
    official_ac_predictor_config,
    official_encoder,
    official_encoder_config,
    official_mask_predictor_config,
    strip_prefixes,
    to_official,
    vjepa2_ac_planner,
)  # fmt: skip
from worldmodel.predictor import ActionConditionedPredictor, PredictorConfig

FIX = Path(__file__).resolve().parent / "fixtures" / "vjepa2"  # reference outputs; see its README.md


@pytest.fixture(scope="module")
def fixture():
    cfg = json.loads((FIX / "config.json").read_text())
    return (
        cfg,
        load_file(str(FIX / "encoder.safetensors")),
        load_file(str(FIX / "ac_predictor.safetensors")),
        load_file(str(FIX / "io.safetensors")),
    )


def fixture_encoder_config(c: dict) -> EncoderConfig:
    e = c["encoder"]
    return EncoderConfig(image_size=e["img_size"][0], patch_size=e["patch_size"], tubelet=e["tubelet_size"],
                         dim=e["embed_dim"], depth=e["depth"], heads=e["num_heads"], mlp_ratio=e["mlp_ratio"],
                         normalize_pixels=False, rope_variant="official", norm_eps=1e-5)  # fmt: skip


def fixture_predictor_config(c: dict) -> PredictorConfig:
    p = c["ac_predictor"]
    return official_ac_predictor_config(enc_dim=p["embed_dim"], grid=p["img_size"][0] // p["patch_size"],
                                        dim=p["predictor_embed_dim"], depth=p["depth"], heads=p["num_heads"],
                                        action_dim=p["action_embed_dim"], norm_eps=1e-5)  # fmt: skip


def test_encoder_reproduces_the_official_outputs(fixture):
    cfg, enc_w, _, io = fixture
    # official checkpoints carry module./backbone. prefixes; loading strips them
    enc = official_encoder({f"module.backbone.{k}": v for k, v in enc_w.items()}, fixture_encoder_config(cfg))
    with torch.no_grad():
        out = OfficialLayoutEncoder(enc)(io["video_BCTHW"])  # (B, C, T, H, W) in, as the official module
    assert out.shape == io["encoder_tokens"].shape == (2, 32, 64)
    err = (out - io["encoder_tokens"]).abs().max()
    assert err <= 1e-5
    # our own RoPE computes something else: the compatibility mode is what makes it match
    ours = VideoEncoder(EncoderConfig(**{**fixture_encoder_config(cfg).__dict__, "rope_variant": "ours"}))
    ours.load_state_dict(enc_w)
    with torch.no_grad():
        assert (
            OfficialLayoutEncoder(ours.eval())(io["video_BCTHW"]) - io["encoder_tokens"]
        ).abs().max() > 50 * err


def test_ac_predictor_reproduces_the_official_outputs_and_causality(fixture):
    cfg, _, pred_w, io = fixture
    pred = official_ac_predictor(pred_w, fixture_predictor_config(cfg))
    z = io["ac_context_tokens"].view(2, 3, 16, 64)  # 3 frames x 16 patches, time-major
    with torch.no_grad():
        out, states = pred(z, io["ac_actions"], io["ac_states"])
        assert states is None  # the official model has no state head
        assert (out.flatten(1, 2) - io["ac_predicted_tokens"]).abs().max() <= 1e-5
        a2 = io["ac_actions"].clone()
        a2[:, -1] += 1.0  # only the last frame's action changes: only its outputs may change
        out2, _ = pred(z, a2, io["ac_states"])
    assert torch.equal(out2[:, :2], out[:, :2]) and not torch.allclose(out2[:, 2], out[:, 2])


def test_official_predictor_plans_through_our_cached_rollout(fixture):
    cfg, _, pred_w, io = fixture
    pred = official_ac_predictor(pred_w, fixture_predictor_config(cfg))
    z0, s0 = io["ac_context_tokens"].view(2, 3, 16, 64)[0, :1], io["ac_states"][0, :1]
    acts = torch.randn(5, 2, 7, generator=torch.Generator().manual_seed(0))
    zs, ss = pred.rollout(z0, s0, acts)
    assert zs.shape == (5, 2, 16, 64) and ss.shape == (5, 2, 7)
    torch.testing.assert_close(ss[:, 0], s0 + acts[:, 0])  # end-effector deltas integrate the state
    with torch.no_grad():  # step 1 equals the full pass on the context frame
        full, _ = pred(z0[None].expand(5, -1, -1, -1), acts[:, :1], s0[None].expand(5, -1, -1))
    torch.testing.assert_close(zs[:, 0], full[:, 0], rtol=1e-5, atol=1e-5)
    planner = vjepa2_ac_planner()
    assert (planner.samples, planner.elites, planner.iterations, planner.horizon) == (800, 10, 10, 1)


MANIFEST = json.loads((FIX / "state_dict_manifest.json").read_text()) if FIX.exists() else {}


def _build_meta(name: str) -> torch.nn.Module:
    enc_name = name.split(".")[0]
    with torch.device("meta"):
        if name == "vjepa2-ac-vitg.predictor":
            return ActionConditionedPredictor(official_ac_predictor_config())
        enc_cfg = official_encoder_config(enc_name)
        if name.endswith(".encoder"):
            return VideoEncoder(enc_cfg)
        return MaskPredictor(enc_cfg, official_mask_predictor_config())


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_every_published_configuration_builds_with_matching_names_and_shapes(name):
    module = _build_meta(name)  # the meta device: no memory is used
    ours = {k: list(v.shape) for k, v in module.state_dict().items()}
    assert ours == MANIFEST[name]
    if name == "vjepa2-ac-vitg.predictor":
        assert 300e6 < sum(v.numel() for v in module.parameters()) < 310e6


def test_round_trip_ours_to_official_and_back_is_exact(fixture, tmp_path):
    cfg, enc_w, pred_w, _ = fixture
    torch.manual_seed(0)
    enc = VideoEncoder(fixture_encoder_config(cfg))
    pred = ActionConditionedPredictor(fixture_predictor_config(cfg))
    ckpt = {"encoder": to_official(enc.state_dict(), enc), "predictor": to_official(pred.state_dict(), pred),
            "target_encoder": to_official(enc.state_dict(), enc), "epoch": 3}  # fmt: skip
    assert all(k.startswith("module.backbone.") for k in ckpt["encoder"])
    torch.save(ckpt, tmp_path / "official.pt")
    back = load_official_file(tmp_path / "official.pt")
    enc2 = official_encoder(back["encoder"], fixture_encoder_config(cfg))
    for k, v in enc.state_dict().items():
        assert torch.equal(v, enc2.state_dict()[k]), k
    pred2 = official_ac_predictor(back["predictor"], fixture_predictor_config(cfg))
    for k, v in pred.state_dict().items():
        assert torch.equal(v, pred2.state_dict()[k]), k


def test_models_without_an_official_equivalent_are_refused():
    ours = ActionConditionedPredictor(PredictorConfig.tiny())
    problems = incompatibilities(ours)
    assert any("residual" in p for p in problems) and any("state head" in p for p in problems)
    with pytest.raises(ValueError, match="no official equivalent"):
        to_official(ours.state_dict(), ours)
    assert strip_prefixes({"module.backbone.norm.weight": 1, "backbone.module.x": 2}) == {
        "norm.weight": 1,
        "x": 2,
    }
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_official_file("/nonexistent/vitg.pt")
    with pytest.raises(ValueError, match="unknown official encoder"):
        official_encoder_config("vitz")


def test_import_train_on_top_and_plan(fixture, tmp_path, tiny_pipeline):
    """An official encoder imported as our encoder run; an official AC predictor fine-tuned from a
    LeRobot dataset; the official pair planning through our CEM with the L1 energy."""
    from planners import plan_cem
    from worldmodel.official import import_encoder
    from worldmodel.world_model import WorldModel, make_latent_goal_cost

    cfg, enc_w, pred_w, io = fixture
    ckpt = tmp_path / "official.pt"
    torch.save({"encoder": {f"module.backbone.{k}": v for k, v in enc_w.items()},
                "predictor": {f"module.backbone.{k}": v for k, v in pred_w.items()}}, ckpt)  # fmt: skip
    # the fixture encoder has the published layout at a tiny width: import it under a tiny config
    enc_cfg = fixture_encoder_config(cfg)
    enc = official_encoder(load_official_file(ckpt)["encoder"], enc_cfg)
    video = io["video_BCTHW"].transpose(1, 2)  # (B, T, C, H, W) in [0, 1]
    pred = official_ac_predictor(load_official_file(ckpt)["predictor"], fixture_predictor_config(cfg))
    wm = WorldModel.from_modules(enc, pred)
    z = wm.encode(video[:, 0])  # each frame duplicated into a tubelet, layer-normed
    assert z.shape == (2, 16, 64)
    cost = make_latent_goal_cost(wm, z[:1], io["ac_states"][0, :1], z[1], metric="l1")
    res = plan_cem(cost, -torch.ones(7), torch.ones(7), vjepa2_ac_planner().__class__(horizon=1, samples=32, elites=4,
                   iterations=3, momentum=0.15, min_std=0.0), generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert res.actions.shape == (1, 7) and res.cost_history[-1] <= res.cost_history[0]
    with pytest.raises(ValueError, match="unknown official encoder"):
        import_encoder(ckpt, "vitq", tmp_path / "x")


def test_fine_tune_an_official_ac_predictor_on_a_lerobot_dataset(tiny_pipeline, tmp_path):
    from worldmodel.train.config import LoopConfig
    from worldmodel.train.predictor import TrainACConfig, train_ac
    from worldmodel.world_model import WorldModel

    # an official-layout predictor sized for the tiny encoder (32 wide, 4x4 grid) and this data:
    # 2-D actions x frameskip 2 = 4-D model actions, like the 4-D proprio state
    official = ActionConditionedPredictor(
        official_ac_predictor_config(enc_dim=32, grid=4, dim=16, depth=1, heads=2, action_dim=4)
    )
    ckpt = tmp_path / "ac.pt"
    torch.save({"predictor": to_official(official.state_dict(), official)}, ckpt)
    cfg = TrainACConfig(data=tiny_pipeline["data"], encoder=tiny_pipeline["encoder"], out=tmp_path / "ft", pool=0,
                        frameskip=2, frames=3, init_official=ckpt, official_heads=2,
                        loop=LoopConfig(steps=3, batch_size=4, progress=False, threads=1))  # fmt: skip
    train_ac(cfg)
    wm = WorldModel.load(tmp_path / "ft")
    assert not wm.predictor.cfg.residual and not wm.predictor.cfg.state_head
    tuned = wm.predictor.state_dict()
    assert any(not torch.equal(tuned[k], v) for k, v in official.state_dict().items())  # it trained
    with pytest.raises(ValueError, match="4-D actions"):
        train_ac(TrainACConfig(**{**cfg.__dict__, "frameskip": 5, "out": tmp_path / "bad"}))
