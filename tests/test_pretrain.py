"""Pretraining runs: smoke run, exact resume, DDP and FSDP2 with 2 processes, bad input."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from envs.collect import CollectConfig, collect
from worldmodel.data import DatasetError
from worldmodel.train.config import LoopConfig, from_plain, load_config_dict
from worldmodel.train.logger import read_metrics
from worldmodel.train.pretrain import PretrainConfig, pretrain
from worldmodel.world_model import load_encoder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "pm"
    collect(
        CollectConfig(
            task="pointmass", episodes=6, steps=16, image_size=32, workers=0, out=root, progress=False
        )
    )
    return root


def tiny(dataset: Path, out: Path, **loop) -> PretrainConfig:
    base = dict(steps=6, batch_size=4, log_every=2, eval_every=3, ckpt_every=2, progress=False, threads=1)
    base.update(loop)
    return PretrainConfig(data=dataset, out=out, preset="tiny", held_out=0.34, loop=LoopConfig(**base))


def test_pretrain_smoke_writes_the_run(dataset, tmp_path):
    metrics = pretrain(tiny(dataset, tmp_path / "run"))
    run = tmp_path / "run"
    for f in ("config.yaml", "config.json", "metrics.jsonl", "encoder.safetensors", "encoder.json"):
        assert (run / f).exists(), f
    assert {"loss", "feature_std", "sensitivity", "sensitivity_init", "sensitivity_vs_init"} <= set(metrics)
    records = read_metrics(run)
    assert [r["step"] for r in records if "loss" in r] == [2, 4, 6]
    cfg = from_plain(PretrainConfig, load_config_dict(run)["run"])
    assert cfg == tiny(dataset, run)  # the saved config is the resolved config
    state = torch.load(run / "checkpoint" / "state.pt", weights_only=True)
    assert state["step"] == 6
    enc = load_encoder(run)
    assert enc(torch.rand(2, 2, 3, 32, 32)).shape == (2, 1, 16, 32)


@pytest.mark.parametrize("sigreg", [0.0, 0.5])
def test_resume_gives_the_same_weights(dataset, tmp_path, sigreg):
    def cfg(out, **loop):
        return replace(tiny(dataset, out, **loop), sigreg=sigreg)

    pretrain(cfg(tmp_path / "straight"))
    pretrain(cfg(tmp_path / "cut", stop_at=3))  # killed after step 3 (checkpoint at 2 ... and 3)
    assert not (tmp_path / "cut" / "encoder.safetensors").exists()
    pretrain(cfg(tmp_path / "cut"))  # rerun: resumes
    a = load_file(str(tmp_path / "straight" / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "checkpoint" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["step"] for r in read_metrics(tmp_path / "cut") if "loss" in r] == [2, 4, 6]


def test_ddp_and_fsdp2_two_processes_gloo(dataset, tmp_path, torchrun):
    """DDP and FSDP2 on 2 processes train the same weights; FSDP2 cut and resumed equals both."""

    def args(out: Path, parallel: str, *extra: str) -> list[str]:
        return ["pretrain", "--data", str(dataset), "--out", str(out), "--preset", "tiny", "--held-out", "0.34",
                "--loop.steps", "4", "--loop.batch-size", "4", "--loop.log-every", "2", "--loop.eval-every", "2",
                "--loop.parallel", parallel, *extra]  # fmt: skip

    torchrun(args(tmp_path / "ddp", "ddp"), 29571)
    torchrun(args(tmp_path / "fsdp", "fsdp", "--loop.stop-at", "2"), 29572)
    assert not (tmp_path / "fsdp" / "encoder.safetensors").exists()  # interrupted
    torchrun(args(tmp_path / "fsdp", "fsdp"), 29573)
    a = load_file(str(tmp_path / "ddp" / "encoder.safetensors"))
    b = load_file(str(tmp_path / "fsdp" / "encoder.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    for run in ("ddp", "fsdp"):
        logged = read_metrics(tmp_path / run)
        assert [r["step"] for r in logged if "loss" in r] == [2, 4]
        assert [r["step"] for r in logged if "sensitivity" in r] == [2, 4]  # checks ran on gathered weights


def test_bad_input(dataset, tmp_path):
    with pytest.raises(ValueError, match="multiple of the tubelet"):
        pretrain(replace(tiny(dataset, tmp_path / "x"), frames=3))
    with pytest.raises(DatasetError, match="missing dataset metadata"):
        pretrain(tiny(tmp_path / "nothing", tmp_path / "y"))
    with pytest.raises(FileNotFoundError, match="did not finish"):
        load_encoder(tmp_path / "x")
