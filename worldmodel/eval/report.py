"""Reporting for evaluations: Markdown tables, episode videos (observation beside goal), cost plots."""

from __future__ import annotations

import math
import platform
import subprocess
from pathlib import Path

import numpy as np


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def upscale(img: np.ndarray, k: int) -> np.ndarray:
    return img.repeat(k, axis=0).repeat(k, axis=1)


def caption(img: np.ndarray, text: str) -> np.ndarray:
    """A copy of img (H, W, 3) uint8 with a caption bar below it."""
    from PIL import Image, ImageDraw

    h, w = img.shape[:2]
    canvas = Image.new("RGB", (w, h + 14), (20, 20, 20))
    canvas.paste(Image.fromarray(img), (0, 0))
    ImageDraw.Draw(canvas).text((3, h + 1), text, fill=(235, 235, 235))
    return np.asarray(canvas)


def side_by_side(frame: np.ndarray) -> np.ndarray:
    """A frame of K cameras stacked along the channels (H, W, 3K) -> their views in a row (H, K*W, 3)."""
    views = frame.shape[-1] // 3
    return frame if views == 1 else np.concatenate(np.split(frame, views, axis=-1), axis=1)


def episode_frames(
    observations: list[np.ndarray],
    goal: np.ndarray,
    costs: list[float],
    plan_steps: list[int],
    scale: int = 3,
):
    """Video frames: observation | goal, each step captioned with the predicted cost of the plan it
    executes (``costs`` and ``plan_steps``, env steps executed, per re-plan); frames of several
    cameras (H, W, 3K) show their views side by side. One observation per executed env step."""
    goal_up = upscale(side_by_side(goal), scale)
    plan_of = np.repeat(np.arange(len(plan_steps)), plan_steps)  # (env steps,) the plan of each step
    for t, (obs, plan) in enumerate(zip(observations, plan_of, strict=True)):
        obs = side_by_side(obs)
        c = costs[plan]
        label = f"observation | goal   t={t + 1}" + (f"  plan cost {c:.3g}" if math.isfinite(c) else "")
        frame = np.concatenate([upscale(obs, scale), goal_up], axis=1)
        frame = caption(frame, label)
        yield frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2]


def plot_cost_histories(path: Path, curves: dict[str, np.ndarray], title: str) -> bool:
    """Mean best cost per planner iteration, one line per row; False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, curve in curves.items():
        if len(curve):
            ax.plot(np.arange(1, len(curve) + 1), curve / max(abs(curve[0]), 1e-12), label=name)
    ax.set_xlabel("planner iteration")
    ax.set_ylabel("best cost / first iteration's")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def commit() -> str:
    """The checked-out commit of this code (whatever the working directory), with ``+dirty`` when
    tracked files differ from it."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=here
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=here).stdout.strip()  # fmt: skip
    except OSError:
        return "unknown"
    return (sha or "unknown") + ("+dirty" if dirty else "")


def hardware(workers: int) -> str:
    """The machine a result was measured on, in words."""
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, {workers} planning processes"
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads, {workers} planning processes"


def write_readme(path: Path, text: str, markers: tuple[str, str]) -> None:
    """Replace what lies between the markers ``(begin, end)`` of ``path`` with ``text``."""
    begin, end = markers
    doc = path.read_text()
    if begin not in doc or end not in doc:
        raise ValueError(f"{path} has no {begin} ... {end} markers to write the table between")
    head, rest = doc.split(begin, 1)
    path.write_text(head + begin + "\n" + text + end + rest.split(end, 1)[1])


def publish_table(text: str, path: Path, readme: Path | None, markers: tuple[str, str]) -> None:
    """A results table out: into ``path``, into ``readme`` between ``markers`` when given, printed."""
    path.write_text(text)
    if readme is not None:
        write_readme(readme, text, markers)
    print(text)
