"""Shared test settings: headless rendering and single-threaded torch."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import torch

# One thread: predictable on CI's 2 cores, and no oversubscription when a DataLoader or a
# second process (DDP, collection workers) runs beside the test process.
torch.set_num_threads(1)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> dict[str, Path]:
    """A small point-mass dataset, a tiny pretrained encoder and a tiny trained predictor."""
    from envs.collect import CollectConfig, collect
    from worldmodel.train.config import LoopConfig
    from worldmodel.train.predictor import TrainACConfig, train_ac
    from worldmodel.train.pretrain import PretrainConfig, pretrain

    root = tmp_path_factory.mktemp("pipeline")
    data, enc, ac = root / "pm", root / "enc", root / "ac"
    collect(
        CollectConfig(
            task="pointmass", episodes=6, steps=40, image_size=32, workers=0, out=data, progress=False
        )
    )
    loop = dict(batch_size=4, progress=False, threads=1)
    pretrain(
        PretrainConfig(data=data, out=enc, preset="tiny", held_out=0.34, loop=LoopConfig(steps=2, **loop))
    )
    train_ac(TrainACConfig(data=data, encoder=enc, out=ac, preset="tiny", pool=0, frameskip=5, frames=3,
                           rollout_steps=2, readout_steps=200, loop=LoopConfig(steps=4, **loop)))  # fmt: skip
    return {"data": data, "encoder": enc, "ac": ac}


def _torchrun(args: list[str], port: int) -> None:
    """Run ``wm <args>`` in 2 processes on CPU (gloo); fail with their stderr."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "worldmodel.cli", *args, "--loop.threads", "1", "--loop.no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.fixture
def torchrun():
    """``torchrun(args, port)``: a ``wm`` command on 2 processes (DDP / FSDP2 tests)."""
    return _torchrun


@pytest.fixture
def check_env_warnings():
    """Run gymnasium's ``check_env`` on an env -> the warnings it raised beyond the one allowed
    (unbounded float observation spaces may be unintended: ours are)."""
    import warnings

    from gymnasium.utils.env_checker import check_env

    def run(env) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env)
        return [str(w.message) for w in caught if "infinity" not in str(w.message)]

    return run
