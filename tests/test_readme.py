"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

from envs.collect import CollectConfig, collect

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run(tmp_path, monkeypatch, tiny_pipeline):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "ac-pm").symlink_to(tiny_pipeline["ac"])  # the world model `wm train-ac` makes
    monkeypatch.setenv("WM_CACHE_DIR", str(tmp_path / "cache"))
    # the dataset example reads data/pointmass, as `wm collect` in the README would make it
    collect(
        CollectConfig(
            task="pointmass", episodes=2, steps=25, workers=0, out=Path("data/pointmass"), progress=False
        )
    )
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert (tmp_path / "goal.png").stat().st_size > 0
    assert namespace["item"]["actions"].shape == (4, 10)
    assert namespace["rec"].evaluations and all(n > 0 for n in namespace["rec"].evaluations)  # it planned
    namespace["env"].close()
