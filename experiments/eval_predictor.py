"""Does the predictor beat copying the last frame? Open-loop, on held-out episodes.

For a ``train-ac`` run: from frames of held-out episodes, roll the world model out open-loop for
``horizon`` model steps with the recorded actions, and compare at each horizon h:

* latent L1 error of the prediction vs the true future features, against copy-last (the context
  frame's features used as the prediction);
* the error of the proprio state decoded from predicted features by a read-out (the run's kind,
  MLP or ridge, on the run's state encoding) fitted on TRUE features of training episodes,
  against the same read-out applied to the copied frame (regressing to the mean would show up
  here, even when the latent error looks good); angle errors wrapped; over all state dims, and
  over the dims the read-out reads (held-out R^2 >= ``MIN_TRUST``: the ones planning weighs;
  velocities, which one frame does not show, are read by neither baseline nor model and only
  add a shared floor to the all-dims error);
* the error of the predictor's own next-state head, against copying the last state.

    python experiments/eval_predictor.py --run runs/ac-pm
    python experiments/eval_predictor.py --run runs/ac-pm --probe-seed 1 --readout ridge
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import tyro

from worldmodel.data import LeRobotDataset
from worldmodel.data.features import FeatureStore
from worldmodel.readout.fit import fit_feature_readout, readout_kind, readout_rows
from worldmodel.train.config import load_config_dict
from worldmodel.world_model import WorldModel


@dataclass(frozen=True)
class EvalPredictorConfig:
    """Does the predictor beat copying the last frame? Open-loop, on held-out episodes."""

    run: Path
    """the train-ac run directory; the result is written to its predictor_eval.json"""
    horizon: int = 5
    """model steps rolled out open-loop from each anchor"""
    anchors: int = 400
    """held-out start frames"""
    probe_frames: int = 4000
    """training-episode frames the state read-out is fitted on"""
    threads: int = 2
    """torch intra-op threads"""
    readout: Literal["auto", "mlp", "ridge"] | None = None
    """kind of the state read-out (default: the run's; ridge for a run without one)"""
    probe_seed: int = 0
    """seed of the read-out's rows and fit (0: the rows train-ac's --decode-weight read-out was fitted on)"""


def main(cfg: EvalPredictorConfig) -> dict:
    torch.set_num_threads(cfg.threads)
    saved = load_config_dict(cfg.run)
    run_cfg = saved["run"]
    wm = WorldModel.load(cfg.run)
    k, H = wm.frameskip, cfg.horizon
    store = FeatureStore(run_cfg["features"] or cfg.run / "features")
    held = set(int(e) for e in saved["held_out_episodes"])
    full = LeRobotDataset(run_cfg["data"], check_videos=False)
    starts = {int(e): int(s) for e, s in zip(full.episode_index, full.starts)}
    states_all = full.columns["observation.state"]
    actions_all = full.columns["action"]

    # read-out fitted on true (stored) features of training episodes
    codec = wm.state_codec
    kind = cfg.readout or (readout_kind(wm.readout) if wm.readout is not None else "ridge")
    rng = np.random.default_rng(0)  # draws the read-out's rows, then the anchors
    fit_rows = readout_rows(full, held, cfg.probe_frames, rng)
    if cfg.probe_seed:  # an independent read-out (other rows, other initialisation); same anchors
        fit_rows = readout_rows(full, held, cfg.probe_frames, np.random.default_rng(cfg.probe_seed))
    probe = fit_feature_readout(store, full, fit_rows, codec, kind, seed=cfg.probe_seed)

    read = (codec.raw_weights(probe.dim_weights) > 0).numpy()  # (P,) the dims planning uses

    def decode_error(features: torch.Tensor, true_states: np.ndarray) -> np.ndarray:
        """Absolute error per row and raw dim of the states decoded from features (angles
        wrapped): (rows, P)."""
        with torch.no_grad():
            decoded = codec.decode(probe(features))
        return codec.difference(decoded, torch.from_numpy(true_states).float()).numpy()

    def state_error(states: np.ndarray | torch.Tensor, true_states: np.ndarray) -> np.ndarray:
        return (
            codec.difference(
                torch.as_tensor(np.array(states, np.float32)), torch.from_numpy(true_states).float()
            )
            .mean(1)
            .numpy()
        )

    # held-out anchors whose H*k future exists
    anchors = []
    for e, n in zip(full.episode_index, full.lengths):
        if int(e) in held:
            anchors += [starts[int(e)] + t for t in range(0, int(n) - H * k)]
    anchors = np.array(anchors)[
        np.sort(rng.choice(len(anchors), size=min(cfg.anchors, len(anchors)), replace=False))
    ]

    lat_m, lat_c, st_m, st_c, head_m, head_c = ([] for _ in range(6))
    for a in anchors:
        z0 = store.rows([a])  # (1, N, D)
        s0 = torch.from_numpy(states_all[a : a + 1].astype(np.float32))
        acts = torch.from_numpy(actions_all[a : a + H * k].reshape(1, H, -1).astype(np.float32))
        pred, pstates = wm.rollout(z0, s0, acts)  # (1, H, N, D)
        future = a + k * np.arange(1, H + 1)
        true = store.rows(future)  # (H, N, D)
        lat_m.append((pred[0] - true).abs().mean(dim=(1, 2)).numpy())
        lat_c.append((z0 - true).abs().mean(dim=(1, 2)).numpy())
        true_s = states_all[future]
        st_m.append(decode_error(pred[0].flatten(1), true_s))
        st_c.append(decode_error(z0.flatten(1).expand(H, -1), true_s))
        if pstates is not None:
            head_m.append(state_error(pstates[0], true_s))
            head_c.append(state_error(np.broadcast_to(states_all[a], true_s.shape), true_s))

    st_m, st_c = np.array(st_m), np.array(st_c)  # (anchors, H, P)
    rows = {"latent L1, model": lat_m, "latent L1, copy-last": lat_c,
            "decoded-state L1, model": st_m.mean(-1), "decoded-state L1, copy-last": st_c.mean(-1)}  # fmt: skip
    if read.any() and not read.all():  # the dims the read-out reads (R^2 >= MIN_TRUST)
        rows |= {"decoded read dims L1, model": st_m[..., read].mean(-1),
                 "decoded read dims L1, copy-last": st_c[..., read].mean(-1)}  # fmt: skip
    if head_m:
        rows |= {"state-head L1, model": head_m, "state L1, copy-last": head_c}
    means = {name: np.mean(v, axis=0) for name, v in rows.items()}
    print(f"# {cfg.run}: {len(anchors)} held-out anchors, horizons 1..{H} model steps of {k} env steps, "
          f"{kind} read-out")  # fmt: skip
    print("| measure | " + " | ".join(f"h={h}" for h in range(1, H + 1)) + " |")
    print("|---|" + "---|" * H)
    for name, m in means.items():
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in m) + " |")

    def wins(measure: str) -> bool:  # the model beats copy-last at every horizon
        return bool(np.all(means[f"{measure}, model"] < means[f"{measure}, copy-last"]))

    beats = wins("latent L1") and wins("decoded-state L1")
    print(f"# beats copy-last on both at every horizon: {beats}")
    verdicts = {"beats_copy_last": beats}
    if "decoded read dims L1, model" in means:
        on_read = wins("latent L1") and wins("decoded read dims L1")
        names = [n for n, r in zip(full.features["observation.state"]["names"] or [], read) if r]
        print(f"# on the dims the read-out reads {names or np.flatnonzero(read).tolist()}: {on_read}")
        verdicts["beats_copy_last_on_read_dims"] = on_read
    result = {k: v.tolist() for k, v in means.items()} | verdicts
    (cfg.run / "predictor_eval.json").write_text(json.dumps(result))
    return result


if __name__ == "__main__":
    main(tyro.cli(EvalPredictorConfig))
