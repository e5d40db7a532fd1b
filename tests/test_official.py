"""Official V-JEPA 2 checkpoints: fixture outputs reproduced, published shapes built, round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from worldmodel.encoder import EncoderConfig, VideoEncoder
from worldmodel.jepa.objective import MaskPredictor, MaskPredictorConfig
from worldmodel.official import (
    OfficialLayoutEncoder,
    incompatibilities,
    load_official_file,
    official_ac_predictor,
    official_ac_predictor_config,
    official_encoder,
    official_encoder_config,
    official_mask_predictor,
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
    # end-effector deltas move the pose: xyz added, the gripper clipped to [0, 1]
    torch.testing.assert_close(ss[:, 0, :3], s0[:, :3] + acts[:, 0, :3])
    torch.testing.assert_close(ss[:, 0, 6], (s0[:, 6] + acts[:, 0, 6]).clamp(0, 1))
    with torch.no_grad():  # step 1 equals the full pass on the context frame, layer-normed
        full, _ = pred(z0[None].expand(5, -1, -1, -1), acts[:, :1], s0[None].expand(5, -1, -1))
    normed = torch.nn.functional.layer_norm(full[:, 0], (64,), eps=1e-5)
    torch.testing.assert_close(zs[:, 0], normed, rtol=1e-5, atol=1e-5)
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


# -- the pretraining mask predictor and the planning loop (mask_io, ac_plan_io; see the README) ------


def test_mask_predictor_reproduces_the_official_outputs(fixture):
    cfg, enc_w, _, io = fixture
    mio = load_file(str(FIX / "mask_io.safetensors"))
    enc = official_encoder(enc_w, fixture_encoder_config(cfg))
    pcfg = official_mask_predictor_config(dim=32, depth=2, heads=2, num_mask_tokens=2)
    pred = official_mask_predictor(load_file(str(FIX / "mask_predictor.safetensors")), enc.cfg, pcfg)
    video = io["video_BCTHW"].transpose(1, 2)  # (B, T, C, H, W)
    pos = enc.token_positions(2)  # (2 x 4 x 4, 3), time-major as the official indices
    ours = MaskPredictor(enc.cfg, MaskPredictorConfig(**{**pcfg.__dict__, "rope_variant": "ours"}))
    ours.load_state_dict(pred.state_dict())
    with torch.no_grad():
        for k in (0, 1):
            keep, tgt = mio[f"mask_enc_k{k}"], mio[f"mask_pred_k{k}"]
            ctx = enc(video, keep=keep)
            assert (ctx - mio[f"ctx_k{k}"]).abs().max() <= 1e-5
            out = pred(mio[f"ctx_k{k}"], pos[keep], pos[tgt], kind=k)
            assert (out - mio[f"pred_k{k}"]).abs().max() <= 1e-5
            shared = pred(mio[f"ctx_k{k}"], pos[keep], pos[tgt], kind=0)  # what official training runs
            assert (shared - mio[f"pred_k{k}_maskindex0"]).abs().max() <= 1e-5
            # our RoPE computes something else: the official variant is what makes it match
            assert (
                ours(mio[f"ctx_k{k}"], pos[keep], pos[tgt], kind=k) - mio[f"pred_k{k}"]
            ).abs().max() > 2e-4
    assert not torch.allclose(mio["pred_k1"], mio["pred_k1_maskindex0"])


def test_official_training_places_mask_token_zero_for_every_kind():
    from worldmodel.jepa.masks import sample_masks
    from worldmodel.jepa.objective import JEPA, JEPAConfig

    enc = EncoderConfig.tiny()
    for per_kind in (True, False):
        pcfg = MaskPredictorConfig(**{**MaskPredictorConfig.tiny().__dict__, "mask_token_per_kind": per_kind})
        torch.manual_seed(0)
        model = JEPA(JEPAConfig(encoder=enc, predictor=pcfg, sigreg=0.0))
        video = torch.rand(2, 2, 3, 16, 16)
        masks = sample_masks(2, enc.grid, 1, JEPAConfig().masks, torch.Generator().manual_seed(0))
        model.loss(video, masks)[0].backward()
        grad1 = model.predictor.mask_tokens[1].grad
        assert (grad1 is not None and grad1.abs().sum() > 0) == per_kind


@pytest.fixture(scope="module")
def plan_setup(fixture):
    from worldmodel.world_model import WorldModel

    cfg, enc_w, pred_w, io = fixture
    plan = load_file(str(FIX / "ac_plan_io.safetensors"))
    enc = official_encoder(enc_w, fixture_encoder_config(cfg))
    models = {}
    for norm in (True, False):
        pcfg = official_ac_predictor_config(**{**_fixture_ac_args(cfg), "feedback_norm": norm})
        models[norm] = WorldModel.from_modules(enc, official_ac_predictor(pred_w, pcfg))
    return models, io, plan


def _fixture_ac_args(c: dict) -> dict:
    p = c["ac_predictor"]
    return dict(enc_dim=p["embed_dim"], grid=p["img_size"][0] // p["patch_size"], dim=p["predictor_embed_dim"],
                depth=p["depth"], heads=p["num_heads"], action_dim=p["action_embed_dim"], norm_eps=1e-5)  # fmt: skip


def test_planning_energies_reproduce_the_official_planning_loop(plan_setup):
    """The notebook's CEM objective on 16 candidates: frames encoded as its WorldModel does, each
    predicted frame layer-normed and fed back, the pose moved by compute_new_pose, L1 to the goal."""
    from worldmodel.world_model import make_latent_goal_cost

    models, io, plan = plan_setup
    video = io["video_BCTHW"][0].transpose(0, 1)  # (T, C, H, W) of sample 0
    for norm, energies in ((True, plan["plan_energies"]), (False, plan["plan_energies_no_norm"])):
        wm = models[norm]
        z = wm.encode(video[[0, 3]])  # frames 0 and 3: context and goal
        assert (z[0] - plan["plan_context_tokens"][0]).abs().max() <= 1e-5
        assert (z[1] - plan["plan_goal_tokens"][0]).abs().max() <= 1e-5
        ctx, goal = plan["plan_context_tokens"][0], plan["plan_goal_tokens"][0]
        cost = make_latent_goal_cost(wm, ctx[None], plan["plan_state"], goal, metric="l1")
        ours = cost(plan["plan_actions"])
        assert (ours - energies).abs().max() <= 2e-7, (ours - energies).abs().max()
        if norm:
            final, _ = wm.rollout(ctx[None], plan["plan_state"], plan["plan_actions"])
            assert (final[:, -1] - plan["plan_final_tokens"]).abs().max() <= 1e-5
    # the two rollouts rank the candidates differently: the option matters
    assert not torch.equal(plan["plan_energies"].argsort(), plan["plan_energies_no_norm"].argsort())


def test_end_effector_pose_update_composes_rotations_and_clips_the_gripper():
    from worldmodel.predictor import ee_pose_update

    g = torch.Generator().manual_seed(0)
    pose = torch.cat([torch.randn(64, 3, generator=g), (torch.rand(64, 3, generator=g) - 0.5) * 2.0,
                      torch.rand(64, 1, generator=g)], dim=-1)  # fmt: skip
    zero_rot = torch.cat(
        [torch.randn(64, 3, generator=g), torch.zeros(64, 3), torch.randn(64, 1, generator=g)], -1
    )
    out = ee_pose_update(pose, zero_rot)
    torch.testing.assert_close(out[:, :3], pose[:, :3] + zero_rot[:, :3])
    torch.testing.assert_close(out[:, 3:6], pose[:, 3:6], atol=1e-6, rtol=0)  # the Euler round trip is exact
    torch.testing.assert_close(out[:, 6], (pose[:, 6] + zero_rot[:, 6]).clamp(0, 1))
    yaw = torch.zeros(2, 7)
    yaw[0, 5], yaw[1, 5] = 0.3, 0.4  # rotations about z add up
    assert ee_pose_update(yaw[:1], yaw[1:])[0, 5].item() == pytest.approx(0.7, abs=1e-6)
    roll = torch.zeros(1, 7)
    roll[0, 3] = 0.5
    pitch = torch.zeros(1, 7)
    pitch[0, 4] = 0.5
    # a delta about y after a rotation about x: extrinsic x-y-z angles (0.5, 0.5, 0)
    torch.testing.assert_close(
        ee_pose_update(roll, pitch)[0, 3:6], torch.tensor([0.5, 0.5, 0.0]), atol=1e-6, rtol=0
    )
    with pytest.raises(ValueError, match="7-D"):
        ee_pose_update(torch.zeros(1, 4), torch.zeros(1, 4))
