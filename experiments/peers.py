"""The peers' benchmarks: our rows beside the published figures, on the environments they come from.

Per benchmark adapter (``pip install '.[benchmarks]'``): collect exploration data (our own: the
papers' datasets download from hosts these machines cannot reach), then evaluate the rows under
LeWM's protocol as published (``wm eval --protocol lewm``) and under ours, and write a table with
the published figure, its source and protocol beside ours. World-model rows come from
``--models ENV=RUN`` (runs trained on the data collected here, e.g. by ``wm train-joint``);
without one an environment reports the oracle and baseline rows only.

    python experiments/peers.py                                        # baselines, every adapter
    python experiments/peers.py --envs wm/dmc-reacher-pose-v0 --models wm/dmc-reacher-pose-v0=runs/joint-dmc
    python experiments/peers.py --report-only --readme README.md      # the table again, from peers.json

Writes ``<out>/<env>/data`` (the dataset), ``<out>/<env>/<protocol>`` (each ``wm eval`` run),
``<out>/peers.json`` and ``<out>/peers.md``; ``--readme`` writes the table between the README's
peers markers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import tyro

from worldmodel.eval.protocol import EvalConfig, evaluate, percent
from worldmodel.eval.report import commit, hardware, markdown_table, publish_table

BEGIN, END = "<!-- peers:begin -->", "<!-- peers:end -->"

#: published figures (success %, the system, where, under what protocol); ../shared/ANCHORS.md
PUBLISHED: dict[str, list[tuple[str, float, str]]] = {
    "wm/dmc-reacher-pose-v0": [
        ("LeWM", 86, "LeWM paper: 50 episodes, goal 25 steps ahead, budget 50, CEM 300 x 30, any step"),
        ("DINO-WM", 79, "same protocol (LeWM paper)"),
        ("random", 10, "same protocol (LeWM paper)"),
    ],
    "wm/ogbench-cube-single-v0": [("LeWM", 74, "LeWM paper: LeWM protocol, OGBench visual-cube-single")],
    "wm/pointmaze-umaze-v0": [
        ("JEPA-WM", 83.9, "JEPA-WMs study: one 30-step plan, CEM 300 x 30, horizon 6"),
        ("DINO-WM", 81.6, "same protocol (JEPA-WMs study)"),
    ],
}


@dataclass(frozen=True)
class PeersConfig:
    """Our rows on the peers' benchmarks beside the published figures."""

    envs: tuple[str, ...] = ("wm/dmc-reacher-pose-v0", "wm/pointmaze-umaze-v0", "wm/ogbench-cube-single-v0")
    """benchmark adapter ids"""
    models: tuple[str, ...] = ()
    """ENV=RUN pairs: a world-model run to evaluate on ENV (trained on <out>/<env>/data)"""
    protocols: tuple[str, ...] = ("lewm", "ours")
    rows: tuple[str, ...] = ("oracle", "random", "do-nothing")
    """rows without a model (the model rows are added for envs given in --models)"""
    collect_episodes: int = 200
    """exploration episodes collected per env (100 steps each)"""
    episodes: int = 0
    """episodes per seed (0: the protocol's)"""
    ours_goals: tuple[str, ...] = ("dataset",)
    """goal modes under our protocol (wm eval --goals); a mode other than dataset gets columns of its own"""
    ours_seeds: tuple[int, ...] = EvalConfig.seeds
    """seeds of our protocol"""
    ours_samples: int = EvalConfig.samples
    """CEM samples under our protocol (iterations and elites below)"""
    ours_iterations: int = EvalConfig.iterations
    ours_elites: int = EvalConfig.elites
    workers: int = 2
    out: Path = Path("runs/peers")
    readme: Path | None = None
    """write the table into this Markdown file between the peers markers"""
    report_only: bool = False
    """rebuild peers.md (and --readme) from <out>/peers.json; run nothing"""


def _models(cfg: PeersConfig) -> dict[str, Path]:
    pairs = {}
    for item in cfg.models:
        env, sep, run = item.partition("=")
        if not sep or env not in cfg.envs:
            raise ValueError(f"--models {item!r}: expected ENV=RUN with ENV one of --envs {list(cfg.envs)}")
        pairs[env] = Path(run)
    return pairs


def run(cfg: PeersConfig) -> dict:
    from envs.collect import CollectConfig, collect
    from envs.registration import BENCHMARKS

    unknown = [e for e in cfg.envs if e not in BENCHMARKS]
    if unknown:
        raise ValueError(f"--envs {unknown} are not benchmark adapters; choose from {list(BENCHMARKS)}")
    models = _models(cfg)
    store = cfg.out / "peers.json"
    bench = {"commit": commit(), "date": time.strftime("%Y-%m-%d"), "hardware": hardware(cfg.workers),
             "config": {k: str(v) for k, v in vars(cfg).items()}, "rows": []}  # fmt: skip
    if store.exists():  # rows of other envs measured before stay; this run's envs are measured again
        bench["rows"] = [r for r in json.loads(store.read_text())["rows"] if r["task"] not in cfg.envs]
    for env_id in cfg.envs:
        root = cfg.out / env_id.split("/")[-1]
        data = root / "data"
        if not (data / "meta" / "info.json").exists():
            collect(CollectConfig(task=env_id, out=data, episodes=cfg.collect_episodes, steps=100,
                                  workers=cfg.workers, progress=False))  # fmt: skip
        rows = (("model-latent", "model") if env_id in models else ()) + cfg.rows
        for protocol in cfg.protocols:
            ecfg = EvalConfig(task=env_id, protocol=protocol, data=data, model=models.get(env_id), rows=rows,
                              workers=cfg.workers, videos=2, out=root / protocol, progress=False)  # fmt: skip
            if protocol == "ours":
                ecfg = replace(ecfg, goals=cfg.ours_goals, seeds=cfg.ours_seeds, samples=cfg.ours_samples,
                               iterations=cfg.ours_iterations, elites=cfg.ours_elites)  # fmt: skip
            if cfg.episodes:
                ecfg = replace(ecfg, episodes=cfg.episodes)
                if protocol == "lewm":  # a shorter run than the protocol's is labelled as such
                    ecfg = replace(ecfg, protocol="ours", seeds=(42,), samples=300, iterations=30, elites=30)
            t0 = time.perf_counter()
            res = evaluate(ecfg)
            name = protocol if not cfg.episodes else f"{protocol} settings, {cfg.episodes} episodes"
            for s in res["summary"]:
                label = name if s["mode"] == "dataset" else f"{name}, {s['mode']} goals"
                bench["rows"].append({**s, "protocol": label, "minutes": (time.perf_counter() - t0) / 60,
                                      "cem": f"{ecfg.samples} x {ecfg.iterations}", "cost_history": None,
                                      "commit": bench["commit"], "date": bench["date"],
                                      "hardware": bench["hardware"]})  # fmt: skip
            store.parent.mkdir(parents=True, exist_ok=True)
            store.write_text(json.dumps(bench, indent=1))  # after each run: a stopped one keeps its rows
    return bench


def report(bench: dict) -> str:
    """One line per environment and row: its success under each protocol run (at the end of the
    episode and at any step, LeWM's rule), the published figures above them."""
    label = {"model": "world model + read-out", "model-latent": "world model, latent alone", "oracle": "oracle",
             "random": "random", "do-nothing": "do nothing"}  # fmt: skip
    protocols = list(dict.fromkeys(r["protocol"] for r in bench["rows"]))
    header = ["environment", "row"] + [f"{p}: {when}" for p in protocols for when in ("end", "any step")]
    rows = []
    for env_id in dict.fromkeys(r["task"] for r in bench["rows"]):
        for who, figure, where in PUBLISHED.get(env_id, []):
            cells = [f"{figure:.1f}%" if (p, when) == ("lewm", "any step") else "-" for p in protocols
                     for when in ("end", "any step")]  # fmt: skip
            rows.append([env_id, f"published: {who} ({where})", *cells])
        found = [r for r in bench["rows"] if r["task"] == env_id]
        for row in dict.fromkeys(r["row"] for r in found):
            cells = []
            for p in protocols:
                r = next((r for r in found if r["row"] == row and r["protocol"] == p), None)
                if r is None:
                    cells += ["-", "-"]
                    continue
                lo, hi = r["success_ci95"]
                cells += [
                    f"{100 * r['success']:.1f}% [{100 * lo:.0f}, {100 * hi:.0f}]",
                    percent(r.get("success_any")),
                ]
            rows.append([env_id, label[row], *cells])
    first = {p: next(r for r in bench["rows"] if r["protocol"] == p) for p in protocols}
    settings = "; ".join(f"{p}: {r['episodes']} episodes, CEM {r['cem']}"
                         + (f", {r['mode']} goals" if r["mode"] == "dataset" else "")  # others: in the label
                         for p, r in first.items())  # fmt: skip
    runs: dict[tuple[str, ...], list[str]] = {}  # rows kept from earlier runs carry their own run's
    for r in bench["rows"]:
        envs = runs.setdefault(tuple(r.get(k, bench[k]) for k in ("commit", "date", "hardware")), [])
        if r["task"] not in envs:
            envs.append(r["task"])
    when = "; ".join(f"commit `{c}`, {d}, {hw}" + (f" ({', '.join(envs)})" if len(runs) > 1 else "")
                     for (c, d, hw), envs in runs.items())  # fmt: skip
    note = (f"{settings}. {when[0].upper() + when[1:]}; `python experiments/peers.py`. "
            "Our data is our own exploration (see experiments/README.md), not the papers' datasets.")  # fmt: skip
    return markdown_table(header, rows) + "\n\n" + note + "\n"


def main(cfg: PeersConfig) -> dict:
    store = cfg.out / "peers.json"
    if cfg.report_only:
        if not store.exists():
            raise FileNotFoundError(f"{store} missing: run experiments/peers.py first")
        bench = json.loads(store.read_text())
    else:
        bench = run(cfg)
    publish_table(report(bench), cfg.out / "peers.md", cfg.readme, (BEGIN, END))
    return bench


if __name__ == "__main__":
    main(tyro.cli(PeersConfig))
