"""``wm eval``: the protocol, its outputs, and parallel episodes (processes, Ray)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from worldmodel.eval.protocol import EvalConfig, evaluate


def small(tiny_pipeline, out, **kw) -> EvalConfig:
    base = dict(task="pointmass", model=tiny_pipeline["ac"], goals=("dataset", "random"), episodes=2, seeds=(0,),
                samples=16, elites=4, iterations=2, workers=0, videos=1, out=out, progress=False, goal_offset=20)  # fmt: skip
    base.update(kw)
    return EvalConfig(**base)


def test_eval_writes_table_videos_and_results(tiny_pipeline, tmp_path):
    res = evaluate(small(tiny_pipeline, tmp_path / "e", videos=-1))
    summary = res["summary"]
    assert [(s["mode"], s["row"]) for s in summary] == [
        (m, r)
        for m in ("dataset", "random")
        for r in ("model", "model-latent", "oracle", "random", "do-nothing")
    ]
    saved = json.loads((tmp_path / "e" / "results.json").read_text())
    assert len(saved["episodes"]) == 20 and saved["summary"] == json.loads(json.dumps(summary))
    by = {(s["mode"], s["row"]): s for s in summary}
    assert by[("dataset", "oracle")]["evaluations"] == 16 * 2  # samples x iterations per re-plan
    assert by[("dataset", "random")]["evaluations"] == 0
    table = (tmp_path / "e" / "results.md").read_text()
    assert "| wm/PointMass-v0 | dataset | oracle | cem | 2 |" in table
    videos = sorted(p.name for p in (tmp_path / "e").glob("*.mp4"))
    assert len(videos) == 20 and "dataset_model_seed0_ep1.mp4" in videos  # one per episode
    assert {e["video"] for e in saved["episodes"]} == set(videos)
    assert (tmp_path / "e" / "cost_history.png").exists()
    # every row plays the same starts and goals: the oracle from the recorded start reaches
    # a goal that the recording itself reached 20 steps later
    assert by[("dataset", "oracle")]["final_distance"] < by[("dataset", "do-nothing")]["final_distance"]


def test_eval_in_worker_processes_matches_in_process(tiny_pipeline, tmp_path):
    cfg = small(tiny_pipeline, tmp_path / "a", rows=("oracle", "random"), goals=("dataset",), videos=0)
    a = evaluate(cfg)["summary"]
    b = evaluate(replace(cfg, workers=2, out=tmp_path / "b"))["summary"]
    for x, y in zip(a, b):
        assert x["success"] == y["success"] and x["final_distance"] == pytest.approx(y["final_distance"])


def test_eval_bad_input(tiny_pipeline, tmp_path):
    with pytest.raises(ValueError, match="need --model"):
        evaluate(small(tiny_pipeline, tmp_path / "x", model=None))
    with pytest.raises(ValueError, match="dataset goals need --data"):
        evaluate(small(tiny_pipeline, tmp_path / "y", model=None, rows=("oracle",)))
    with pytest.raises(ValueError, match="unknown task"):
        evaluate(small(tiny_pipeline, tmp_path / "z", task="cartpole"))
    with pytest.raises(ValueError, match=r"\['block_x'\] are not state dims of this task; it has \['x', 'y'"):
        evaluate(small(tiny_pipeline, tmp_path / "g", goal_dims=("x", "block_x")))
    assert not (tmp_path / "g").exists()  # raised before any work


def test_goal_dims_mask_the_proprio_term_by_name(tiny_pipeline, tmp_path):
    from envs.registration import task_state_names
    from worldmodel.eval.protocol import goal_dim_mask

    names = task_state_names("pushtstate")
    assert goal_dim_mask(names, ("block_angle", "block_x", "block_y")) == [0, 0, 0, 0, 1, 1, 1]
    assert goal_dim_mask(task_state_names("reacher"), ("elbow",)) == [0, 1, 0, 0]
    cfg = small(tiny_pipeline, tmp_path / "m", rows=("model",), goals=("dataset",), episodes=1, videos=0,
                goal_dims=("x",))  # fmt: skip
    assert evaluate(cfg)["summary"][0]["episodes"] == 1  # the masked cost plans an episode


def test_goal_dims_change_the_cost(tiny_pipeline, tmp_path):
    """--goal-dims x: the proprio term scores x alone, so the goal's y no longer moves the cost."""
    import numpy as np
    import torch

    from envs.registration import task_state_names
    from worldmodel.eval.protocol import goal_term
    from worldmodel.world_model import WorldModel, make_latent_goal_cost

    wm = WorldModel.load(tiny_pipeline["ac"])
    names = task_state_names("pointmass")
    img = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    z0, s0 = wm.encode(img[None]), torch.tensor([[0.1, -0.1, 0.0, 0.0]])
    actions = torch.rand(8, 3, wm.action_dim, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def cost(goal: np.ndarray, **kw) -> torch.Tensor:
        cfg = small(tiny_pipeline, tmp_path / "unused", goal_state="recorded", **kw)
        gs, dims, weight = goal_term(wm, img, goal, "recorded", cfg, names)
        if kw.get("goal_dims") == ("x",):
            assert dims[1:].eq(0).all() and dims[0] > 0  # x alone is scored
        return make_latent_goal_cost(wm, z0, s0, z0[0], goal_state=gs, state_weight=weight, state_dims=dims)(
            actions
        )

    goal = np.array([0.5, -0.4, 0.0, 0.0], np.float32)
    far_y = goal + np.array([0, 1.0, 0, 0], np.float32)
    far_x = goal + np.array([1.0, 0, 0, 0], np.float32)
    trusted = wm.readout_trust
    if trusted[1] > 0:  # all dims scored: the goal's y moves the cost
        assert not torch.allclose(cost(goal), cost(far_y))
    torch.testing.assert_close(cost(goal, goal_dims=("x",)), cost(far_y, goal_dims=("x",)))
    assert not torch.allclose(cost(goal, goal_dims=("x",)), cost(far_x, goal_dims=("x",)))
    assert not torch.allclose(cost(goal, goal_dims=("x",)), cost(goal, goal_dims=("y",)))


def test_eval_episodes_through_ray(tiny_pipeline, tmp_path):
    ray = pytest.importorskip(
        "ray", reason="the ray extra (pip install '.[ray]'; scripts/setup.sh installs it)"
    )

    cfg = small(tiny_pipeline, tmp_path / "r", rows=("oracle", "do-nothing"), goals=("dataset",), videos=0,
                workers=2, ray=True)  # fmt: skip
    try:
        summary = evaluate(cfg)["summary"]
    finally:
        ray.shutdown()
    local = evaluate(
        small(tiny_pipeline, tmp_path / "l", rows=("oracle", "do-nothing"), goals=("dataset",), videos=0)
    )
    for x, y in zip(summary, local["summary"]):
        assert x["episodes"] == 2 and x["success"] == y["success"]
        assert x["final_distance"] == pytest.approx(y["final_distance"])  # the same episodes, played alike


def test_recorded_goal_state_is_scored_on_the_dims_the_read_out_reads(tiny_pipeline, tmp_path):
    import numpy as np
    import torch

    from worldmodel.eval.protocol import goal_term
    from worldmodel.world_model import WorldModel

    wm = WorldModel.load(tiny_pipeline["ac"])
    img = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    recorded = np.array([0.3, -0.2, 0.5, 0.1], dtype=np.float32)
    cfg = small(tiny_pipeline, tmp_path / "unused", state_weight=2.0)
    decoded, dims_d, w_d = goal_term(wm, img, recorded, "decoded", cfg)
    goal, dims_r, w_r = goal_term(wm, img, recorded, "recorded", cfg)
    # only the goal's values differ: the same per-dim weights (the read-out's trust) and weight
    assert torch.equal(goal, torch.from_numpy(recorded)) and not torch.equal(decoded, goal)
    assert torch.equal(dims_r, dims_d) and w_r == w_d == 2.0
    assert goal_term(wm, img, recorded, "none", cfg) == (None, None, 0.0)
    with pytest.raises(ValueError, match="needs dataset goals"):
        goal_term(wm, img, None, "recorded", cfg)


def test_moved_goals_need_acting(tiny_pipeline):
    """--goals moved: the success test fails at every start and at every step of doing nothing
    from it; a plain dataset draw that already needs acting is kept as it is; a dataset in which
    no goal needs acting is refused."""
    import numpy as np

    import envs
    from planners import make_oracle_rollout
    from worldmodel.data.reader import LeRobotDataset
    from worldmodel.eval.protocol import _dataset_start

    cfg = EvalConfig(task="pointmass", data=tiny_pipeline["data"], goal_offset=10, budget=30)
    ds = LeRobotDataset(tiny_pipeline["data"])
    env = envs.make("pointmass", image_size=32)
    task = env.unwrapped
    kept = 0
    for i in range(12):
        start, goal, _, origin = _dataset_start(ds, cfg, 0, i, env)
        target = task.goal_from_state(goal)
        task.set_state(start)
        coasting = make_oracle_rollout(env, action_block=1)(np.zeros((1, 30, 2)))[0]
        assert not any(task.is_success(state=s, goal=target) for s in [start, *coasting])
        plain = _dataset_start(ds, cfg, 0, i)
        if origin == plain[3]:
            kept += 1
            assert np.array_equal(start, plain[0])
    assert 0 < kept < 12  # some plain draws needed acting, some were redrawn
    with pytest.raises(ValueError, match="moved goals: 1000 draws"):
        _dataset_start(ds, replace(cfg, goal_offset=0), 0, 0, env)  # every goal is its own start


def test_moved_goals_evaluate_and_report_any_step_success(tiny_pipeline, tmp_path):
    res = evaluate(
        small(tiny_pipeline, tmp_path / "mv", rows=("oracle", "do-nothing"), goals=("moved",), videos=0)
    )
    saved = json.loads((tmp_path / "mv" / "results.json").read_text())
    assert {e["mode"] for e in saved["episodes"]} == {"moved"} and len(saved["episodes"]) == 4
    for e in saved["episodes"]:
        assert e["success_any"] >= e["success"]  # the end of the episode is one of its steps
    still = next(s for s in res["summary"] if s["row"] == "do-nothing")
    assert still["success"] == still["success_any"] == 0.0  # by construction
    for s in res["summary"]:
        k_any = sum(e["success_any"] for e in saved["episodes"] if e["row"] == s["row"])
        assert s["success_any"] == k_any / s["episodes"]
    assert "any-step success" in (tmp_path / "mv" / "results.md").read_text()
    with pytest.raises(ValueError, match="moved goals need --data"):
        evaluate(small(tiny_pipeline, tmp_path / "n", model=None, rows=("oracle",), goals=("moved",)))


def test_eval_offline_measures_prediction_and_planning_without_a_simulator(tiny_pipeline, tmp_path):
    from worldmodel.eval.offline import PREDICTORS, EvalOfflineConfig, evaluate_offline

    cfg = EvalOfflineConfig(model=tiny_pipeline["ac"], horizon=2, anchors=6, plans=3, samples=8, elites=2,
                            iterations=2, videos=2, out=tmp_path / "o", threads=1, progress=False)  # fmt: skip
    res = evaluate_offline(cfg)
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert saved == json.loads(json.dumps(res)) and saved["anchors"] == 6
    for name in (
        "latent error (mean squared)",
        "proprio error (state head)",
        "read-out of the predicted frame",
    ):
        curves = saved["open_loop"][name]
        assert set(curves) == set(PREDICTORS) and all(len(v) == 2 for v in curves.values())
        assert isinstance(saved["beats_copy_last"][name], bool)
    # copy-last is exact at no horizon on a moving ball: its error grows from h=1 to h=2
    copy = saved["open_loop"]["proprio error (state head)"]["copy-last"]
    assert 0 < copy[0] < copy[1]
    plan = saved["planning"]
    assert set(plan["first_block_error"]) == {"plan", "box centre", "random"}
    assert set(plan["final_state_error"]) == {"plan", "start state"}
    assert "beats copy-last at every horizon" in (tmp_path / "o" / "results.md").read_text()
    assert (tmp_path / "o" / "horizons.png").exists() and len(
        list((tmp_path / "o").glob("open_loop_*.mp4"))
    ) == 2
    with pytest.raises(ValueError, match="horizon, anchors and threads must be >= 1"):
        evaluate_offline(replace(cfg, horizon=0))
    with pytest.raises(ValueError, match="elites must be in"):  # before any work
        evaluate_offline(replace(cfg, elites=99, out=tmp_path / "q"))
    assert not (tmp_path / "q").exists()
    with pytest.raises(ValueError, match="no held-out episode is longer than 1000 frames"):
        evaluate_offline(replace(cfg, horizon=199, out=tmp_path / "p"))
