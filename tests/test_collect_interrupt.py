"""An interrupted collection (Ctrl-C, kill) leaves a valid dataset holding every finished episode."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from envs.collect import CollectConfig, collect
from worldmodel.data import LeRobotDataset

# Ctrl-C handling as in a terminal, even when the tests run in a background job (where a
# non-interactive shell starts them with SIGINT ignored, and Python keeps it ignored)
SCRIPT = """
import signal
import sys
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)
from envs.collect import CollectConfig, collect
collect(CollectConfig(task="pointmass", episodes=500, steps=10, workers=2, out=Path(sys.argv[1]),
                      frames_per_file=11, progress=False))
"""


def committed_episodes(root: Path) -> int:
    try:
        return json.loads((root / "meta" / "info.json").read_text())["total_episodes"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_collection_keeps_finished_episodes_and_resumes(tmp_path, sig):
    out = tmp_path / "ds"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(out)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while committed_episodes(out) < 3:
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline, "collection made no progress"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0  # stopped early, and says so
    if sig != signal.SIGKILL:
        assert "collection interrupted" in err
        assert json.loads((out / "meta" / "collection.json").read_text())["interrupted"] is True

    ds = LeRobotDataset(out)  # valid: every listed file exists and its frame counts agree
    k = ds.num_episodes
    assert k >= 3 and k < 500
    np.testing.assert_array_equal(ds.episode_index, np.arange(k))
    ds.frames("observation.images.top", k - 1, np.arange(11))  # the last kept episode decodes

    # resuming gives exactly the episodes of an uninterrupted collection
    cfg = dict(task="pointmass", steps=10, workers=0, frames_per_file=11, progress=False)
    collect(CollectConfig(episodes=k + 2, out=out, mode="resume", **cfg))
    collect(CollectConfig(episodes=k + 2, out=tmp_path / "ref", **cfg))
    resumed, ref = LeRobotDataset(out), LeRobotDataset(tmp_path / "ref")
    assert resumed.num_episodes == k + 2
    for key in ("observation.state", "action", "observation.environment_state", "index"):
        np.testing.assert_array_equal(resumed.columns[key], ref.columns[key])
