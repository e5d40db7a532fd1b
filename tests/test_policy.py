"""The amortised planner: the goal-conditioned policy, its training, the policy planners, and the
planning-cost options (which predicted steps are scored, how much of a plan is executed)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from planners import CEMConfig, PolicyPlanConfig, make_planner, plan_policy
from worldmodel.eval.protocol import EvalConfig, evaluate
from worldmodel.train.policy import TrainPolicyConfig, train_policy
from worldmodel.world_model import WorldModel, make_latent_goal_cost

LOW, HIGH = -torch.ones(2), torch.ones(2)


def quadratic(target: torch.Tensor):
    def cost(actions):  # (S, L, A) -> (S,)
        return (actions - target).pow(2).sum(dim=(1, 2))

    return cost


def with_proposal(cost, plan: torch.Tensor):
    cost.proposal = lambda horizon: plan[:horizon]
    return cost


def test_policy_planner_executes_the_proposal_clipped_in_one_evaluation():
    target = torch.full((3, 2), 0.5)
    proposal = torch.tensor([[0.4, 0.6], [2.0, -3.0], [0.5, 0.5]])
    res = plan_policy(with_proposal(quadratic(target), proposal), LOW, HIGH, PolicyPlanConfig(horizon=3))
    torch.testing.assert_close(res.actions, proposal.clamp(-1, 1))
    assert res.evaluations == 1 and res.cost == pytest.approx(float(quadratic(target)(res.actions[None])[0]))


def test_policy_cem_is_never_worse_than_the_proposal_and_beats_cem_from_the_centre():
    target = torch.tensor([[0.9, -0.8], [0.7, 0.6], [-0.9, 0.9]])
    cem = CEMConfig(horizon=3, samples=8, elites=2, iterations=2, min_std=0.01)
    cost = with_proposal(quadratic(target), target + 0.05)
    proposal_cost = float(quadratic(target)((target + 0.05)[None])[0])
    g = torch.Generator().manual_seed(0)
    refined = plan_policy(cost, LOW, HIGH, PolicyPlanConfig(3, refine=cem), generator=g)
    assert refined.cost <= proposal_cost and refined.evaluations == 16
    plain = make_planner("cem", 3, 8, 2, 2)[0](
        cost, LOW, HIGH, cem, generator=torch.Generator().manual_seed(0)
    )
    assert refined.cost < plain.cost  # at this tiny budget the start is what matters


def test_policy_planner_bad_input():
    with pytest.raises(ValueError, match="need a cost with a proposal"):
        plan_policy(quadratic(torch.zeros(3, 2)), LOW, HIGH, PolicyPlanConfig(3))
    with pytest.raises(ValueError, match=r"proposal has shape \(2, 2\)"):
        plan_policy(
            with_proposal(quadratic(torch.zeros(3, 2)), torch.zeros(2, 2)), LOW, HIGH, PolicyPlanConfig(3)
        )
    with pytest.raises(ValueError, match=r"refine\.horizon 2 != horizon 3"):
        PolicyPlanConfig(3, refine=CEMConfig(horizon=2))


@pytest.fixture(scope="module")
def policy_run(tiny_pipeline, tmp_path_factory):
    """A copy of the tiny world model with a policy trained into it (with goal states)."""
    run = tmp_path_factory.mktemp("policy") / "ac"
    shutil.copytree(tiny_pipeline["ac"], run)
    metrics = train_policy(TrainPolicyConfig(model=run, steps=300, batch_size=64, max_gap=4, goal_state=True,
                                             device="cpu", progress=False))  # fmt: skip
    return run, metrics


def test_policy_trains_into_the_run_and_fits_its_rows(policy_run):
    run, metrics = policy_run
    spec = json.loads((run / "policy.json").read_text())
    assert spec["policy"]["goal_state"] and spec["metrics"] == pytest.approx(metrics)
    # standardised actions: predicting the mean scores about 1; the fit is well below it
    assert metrics["train_loss"] < 0.5 and metrics["held_out_mean_action_loss"] > 0.5
    wm = WorldModel.load(run)
    assert wm.policy is not None
    frames = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    z, s = wm.encode(frames), torch.zeros(1, 4)
    plan = wm.propose(z[:1], s, z[1], horizon=3, goal_state=torch.ones(4))
    assert plan.shape == (3, wm.action_dim)
    # acting on predicted frames: the second action depends on the first through the predictor
    again = wm.propose(z[:1], s, z[1], horizon=3, goal_state=torch.ones(4))
    torch.testing.assert_close(plan, again)
    cost = make_latent_goal_cost(wm, z[:1], s, z[1], policy_goal_state=torch.ones(4))
    torch.testing.assert_close(cost.proposal(3), plan)
    with pytest.raises(ValueError, match="trained with proprio states and goal states"):
        wm.propose(z[:1], s, z[1], horizon=3)


def test_policy_on_states_alone_ignores_the_frames(tiny_pipeline, tmp_path):
    run = tmp_path / "ac"
    shutil.copytree(tiny_pipeline["ac"], run)
    cfg = TrainPolicyConfig(model=run, steps=200, batch_size=64, max_gap=4, goal_state=True, use_latent=False,
                            device="cpu", progress=False)  # fmt: skip
    metrics = train_policy(cfg)
    assert metrics["train_loss"] < 1.0
    assert not json.loads((run / "policy.json").read_text())["policy"]["latent"]
    wm = WorldModel.load(run)
    # inputs: the state and the change still to make to the goal's
    assert wm.policy.net[0].in_features == 2 * wm.state_codec.encoded_dim
    frames = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    z, s, goal = wm.encode(frames), torch.zeros(1, 4), torch.ones(4)
    first = wm.propose(z[:1], s, z[1], horizon=1, goal_state=goal)
    torch.testing.assert_close(wm.propose(z[2:3], s, z[3], horizon=1, goal_state=goal), first)  # other frames
    assert not torch.allclose(wm.propose(z[:1], s, z[1], horizon=1, goal_state=-goal), first)  # another goal
    with pytest.raises(ValueError, match="needs --goal-state"):  # raised before the run is read
        train_policy(replace(cfg, model=tmp_path / "missing", goal_state=False))


def test_planner_labels_are_cems_first_block_on_the_model_rows_cost(tiny_pipeline, tmp_path):
    from planners import plan_cem
    from worldmodel.data import LeRobotDataset
    from worldmodel.train.policy import HindsightRows, PlannerRows, encode_episodes

    run = tmp_path / "ac"
    shutil.copytree(tiny_pipeline["ac"], run)
    budget = dict(plan_samples=16, plan_elites=4, plan_iterations=2, plan_horizon=3)
    cfg = TrainPolicyConfig(model=run, steps=40, batch_size=16, max_gap=2, goal_state=True, labels="planner",
                            plan_rows=5, device="cpu", progress=False, **budget)  # fmt: skip
    metrics = train_policy(cfg)
    assert json.loads((run / "policy.json").read_text())["train"]["labels"] == "planner"
    assert metrics["held_out_mean_action_loss"] > 0  # scored on planner labels of held-out pairs
    cached = run / "policy_labels_train.safetensors"
    stamp = cached.stat().st_mtime_ns
    import planners

    def no_planning(*args, **kwargs):
        raise AssertionError("labels were planned again")

    with pytest.MonkeyPatch.context() as mp:  # the same label settings: the kept labels, no planning
        mp.setattr(planners, "plan_cem", no_planning)
        assert train_policy(replace(cfg, hidden=32))["held_out_mean_action_loss"] == pytest.approx(
            metrics["held_out_mean_action_loss"]
        )
    train_policy(replace(cfg, plan_iterations=3))  # another label setting: planned again, kept anew
    assert cached.stat().st_mtime_ns != stamp

    wm = WorldModel.load(run)
    ds = LeRobotDataset(tiny_pipeline["data"], episodes=[0], check_videos=False)
    rows = HindsightRows(
        *encode_episodes(wm, ds, 10_000, False, decode=True), wm.frameskip, 2, wm.state_codec
    )
    low, high = -torch.ones(wm.action_dim), torch.ones(wm.action_dim)
    tokens = tuple(wm.encode(wm.dataset_frames(ds, 0, np.arange(1))).shape[1:])
    plan_cfg = CEMConfig(horizon=3, samples=16, elites=4, iterations=2)
    labelled = PlannerRows(rows, wm, 3, plan_cfg, low, high, tokens, seed=7, desc="test")
    t, goal = rows.pairs(3, torch.Generator().manual_seed(7))
    cost = make_latent_goal_cost(wm, rows.z[t[1]].view(1, *tokens), rows.raw_s[t[1]][None],
                                 rows.z[goal[1]].view(*tokens), goal_state=rows.raw_sd[goal[1]],
                                 state_weight=EvalConfig.state_weight, state_dims=wm.readout_trust)  # fmt: skip
    plan = plan_cem(cost, low, high, CEMConfig(horizon=3, samples=16, elites=4, iterations=2),
                    generator=torch.Generator().manual_seed(7 * 1_000_003 + 1))  # fmt: skip
    torch.testing.assert_close(labelled.a[1], plan.actions[0])
    recorded = rows.a[t[:, None] + torch.arange(wm.frameskip)].flatten(1)
    assert not torch.allclose(labelled.a, recorded)  # the planner's blocks, not the recorded ones
    assert bool(((labelled.a >= low) & (labelled.a <= high)).all())
    with pytest.raises(ValueError, match="samples"):
        train_policy(replace(cfg, plan_samples=2, plan_elites=4))


def test_world_model_without_policy_has_no_proposal(tiny_pipeline):
    wm = WorldModel.load(tiny_pipeline["ac"])
    z = wm.encode(np.zeros((2, 32, 32, 3), np.uint8))
    assert wm.policy is None and not hasattr(
        make_latent_goal_cost(wm, z[:1], torch.zeros(1, 4), z[1]), "proposal"
    )
    with pytest.raises(ValueError, match="wm train-policy"):
        wm.propose(z[:1], torch.zeros(1, 4), z[1], horizon=2)


def small(model, out, **kw) -> EvalConfig:
    base = dict(task="pointmass", model=model, goals=("dataset",), episodes=2, seeds=(0,), samples=16, elites=4,
                iterations=2, workers=0, videos=0, out=out, progress=False, goal_offset=20)  # fmt: skip
    base.update(kw)
    return EvalConfig(**base)


def test_eval_plans_with_the_policy_in_one_evaluation_per_re_plan(policy_run, tmp_path):
    run, _ = policy_run
    res = evaluate(small(run, tmp_path / "p", planner="policy", rows=("model", "random"), execute=1))
    by = {s["row"]: s for s in res["summary"]}
    assert by["model"]["planner"] == "policy" and by["model"]["evaluations"] == 1
    refined = evaluate(small(run, tmp_path / "c", planner="policy-cem", rows=("model",)))["summary"][0]
    assert refined["evaluations"] == 16 * 2


def test_eval_policy_bad_input(tiny_pipeline, policy_run, tmp_path):
    run, _ = policy_run
    with pytest.raises(ValueError, match="drop oracle from --rows"):
        evaluate(small(run, tmp_path / "a", planner="policy"))
    with pytest.raises(ValueError, match="has no goal-conditioned policy; train one with wm train-policy"):
        evaluate(small(tiny_pipeline["ac"], tmp_path / "b", planner="policy", rows=("model",)))
    with pytest.raises(ValueError, match=r"trained with goal states .* not model-latent"):
        evaluate(small(run, tmp_path / "c", planner="policy", rows=("model-latent",)))
    with pytest.raises(ValueError, match="needs proprio states and a read-out"):
        shutil.copytree(run, tmp_path / "r")
        (tmp_path / "r" / "readout.safetensors").unlink()
        train_policy(
            TrainPolicyConfig(model=tmp_path / "r", steps=1, goal_state=True, device="cpu", progress=False)
        )


def test_cost_over_all_steps_is_the_mean_of_each_steps_distance(tiny_pipeline):
    wm = WorldModel.load(tiny_pipeline["ac"])
    z = wm.encode(np.random.default_rng(1).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8))
    s0 = torch.zeros(1, 4)
    actions = torch.rand(6, 3, wm.action_dim) * 2 - 1
    pred, _ = wm.rollout(z[:1], s0, actions)  # (S, H, N, D)
    per_step = (pred - z[1]).pow(2).mean(dim=(-2, -1))  # (S, H)
    torch.testing.assert_close(
        make_latent_goal_cost(wm, z[:1], s0, z[1], steps="all")(actions), per_step.mean(1)
    )
    torch.testing.assert_close(make_latent_goal_cost(wm, z[:1], s0, z[1])(actions), per_step[:, -1])
    with pytest.raises(ValueError, match="unknown cost steps 'some'"):
        make_latent_goal_cost(wm, z[:1], s0, z[1], steps="some")


def test_execute_is_checked_and_fixed_by_the_lewm_protocol(tiny_pipeline, tmp_path):
    with pytest.raises(ValueError, match=r"--execute must be in \[1, --horizon 5\], got 6"):
        evaluate(small(tiny_pipeline["ac"], tmp_path / "a", execute=6))
    with pytest.raises(ValueError, match="--protocol lewm fixes --execute 2"):
        evaluate(replace(small(tiny_pipeline["ac"], tmp_path / "b"), protocol="lewm", episodes=50, seeds=(42,),
                         goal_offset=25, samples=300, iterations=30, elites=30, execute=2))  # fmt: skip
    clash = r"--protocol lewm fixes .*--shrink True \(the protocol's is False\)"
    with pytest.raises(ValueError, match=clash):
        evaluate(replace(small(tiny_pipeline["ac"], tmp_path / "c"), protocol="lewm", shrink=True))
    assert not any((tmp_path / d).exists() for d in "abc")


def test_eval_shrink_plans_up_to_the_budget_with_the_world_model(tiny_pipeline, tmp_path):
    cfg = small(
        tiny_pipeline["ac"], tmp_path / "s", rows=("model-latent",), execute=1, shrink=True, budget=12
    )
    evaluate(replace(cfg, episodes=1))
    episode = json.loads((tmp_path / "s" / "results.json").read_text())["episodes"][0]
    assert episode["replans"] == 3  # 12 env steps in blocks of 5: 3 model steps, 2, 1 left
    assert json.loads((tmp_path / "s" / "config.json").read_text())["shrink"] is True


def test_encode_and_read_is_encode_and_read_state_in_one_pass(tiny_pipeline):
    wm = WorldModel.load(tiny_pipeline["ac"])
    frames = np.random.default_rng(2).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    z, states = wm.encode_and_read(frames)
    torch.testing.assert_close(z, wm.encode(frames))
    torch.testing.assert_close(states, wm.read_state(frames)[0])


def test_policy_planner_without_a_model_runs_the_baselines(tmp_path):
    res = evaluate(small(None, tmp_path / "b", planner="policy", rows=("random",), goals=("random",)))
    assert [s["row"] for s in res["summary"]] == ["random"]


def test_step_history_gives_the_frames_one_block_apart_and_the_actions_between():
    import gymnasium as gym

    from worldmodel.eval.protocol import StepHistory

    env = gym.make("wm/PointMass-v0", image_size=32)
    env.reset(seed=3)
    hist = StepHistory(env)
    frames, states, past = hist.context(3, 5)
    assert frames.shape == (1, 32, 32, 3) and states.shape == (1, 4) and past.shape == (0, 10)
    acts = np.random.default_rng(0).uniform(-1, 1, (12, 2)).astype(np.float32)
    seen = [hist.observations[0]] + [hist.step(a)[0] for a in acts]
    frames, states, past = hist.context(3, 5)  # env steps 2, 7 and 12
    np.testing.assert_array_equal(frames, np.stack([seen[t]["pixels"] for t in (2, 7, 12)]))
    np.testing.assert_array_equal(states, np.stack([seen[t]["state"] for t in (2, 7, 12)]))
    np.testing.assert_array_equal(past, np.stack([acts[2:7].reshape(-1), acts[7:12].reshape(-1)]))
    assert hist.context(9, 5)[0].shape[0] == 3  # no frame before the episode's start
    env.close()


def test_eval_history_feeds_the_world_model_its_context(tiny_pipeline, tmp_path, monkeypatch):
    import worldmodel.world_model as world_model

    contexts = []
    real = world_model.make_latent_goal_cost

    def spy(model, z0, states0, z_goal, **kw):
        contexts.append(
            (z0.shape[0], None if kw["past_actions"] is None else tuple(kw["past_actions"].shape))
        )
        return real(model, z0, states0, z_goal, **kw)

    monkeypatch.setattr(world_model, "make_latent_goal_cost", spy)
    cfg = small(tiny_pipeline["ac"], tmp_path / "h", rows=("model-latent",), execute=1, history=3, budget=20)
    evaluate(replace(cfg, episodes=1, pair_candidates=0))
    a = 5 * 2  # the tiny model's action block of 5 point-mass actions
    assert contexts == [(1, None), (2, (1, a)), (3, (2, a)), (3, (2, a))]
    with pytest.raises(ValueError, match="--history must be >= 1"):
        evaluate(replace(cfg, history=0, out=tmp_path / "bad"))
    assert not (tmp_path / "bad").exists()
