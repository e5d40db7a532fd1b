"""A run directory's contract: its config is recorded once, and a rerun resumes it only unchanged.

``open_run(run, record, force_new)`` is called by every trainer before anything is written:

- a new directory (or an empty one) gets ``config.yaml`` / ``config.json`` written once;
- a directory with a recorded config resumes when ``record`` matches it (the fields in
  ``RESUME_FREE`` may differ: how the rerun is shown and scheduled, not what it trains) and its
  checkpoint is complete; any other difference raises ``RunError`` naming each field, recorded
  and asked value, and changes no file;
- ``force_new`` starts over: the checkpoint, metrics and exported weights are deleted, then the
  new config is recorded.

A checkpoint that is half there (a training state without weights, or the reverse) or a
checkpoint without a recorded config is refused with the file named: restarting from step 0
would overwrite the metrics and checkpoint of a run that did train.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from worldmodel.train.checkpoint import checkpoint_status
from worldmodel.train.config import save_config, to_plain

#: config fields a resumed run may change: display, scheduling and where it runs, not what it trains
RESUME_FREE = frozenset(
    {
        "out",
        "loop.progress",
        "loop.stop_at",
        "loop.num_workers",
        "loop.threads",
        "loop.device",
        "loop.force_new",
    }
)

#: what a trainer writes into its run directory (deleted by ``force_new``)
RUN_FILES = (
    "checkpoint", "checkpoint.new", "checkpoint.old", "metrics.jsonl", "tb", "config.yaml", "config.json",
    "world_model.json", "encoder.json", "encoder.safetensors", "predictor.safetensors", "readout.safetensors",
    "loss_readout.safetensors",
)  # fmt: skip


class RunError(ValueError):
    """A run directory cannot be started or resumed as asked (changed settings, a partial checkpoint)."""


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def _field(key: str) -> str:
    """``run.loop.steps`` -> ``loop.steps`` (the command-line name, without the record's top level)."""
    return key[len("run.") :] if key.startswith("run.") else key


def config_changes(recorded: dict, record: dict) -> list[str]:
    """``field: recorded -> asked`` for every field (dotted, as on the command line) that differs."""
    old, new = _flatten(recorded), _flatten(record)
    changes = []
    for key in sorted(set(old) | set(new)):
        if _field(key) in RESUME_FREE:
            continue
        a, b = old.get(key, "(absent)"), new.get(key, "(absent)")
        if a != b:
            changes.append(f"{_field(key)}: recorded {a!r}, asked {b!r}")
    return changes


def open_run(run: Path, record: dict, *, force_new: bool = False, main: bool = True) -> bool:
    """Check ``run`` against the plain config ``record``; record it if the run is new.

    Returns True when the run resumes from its checkpoint, False when it starts at step 0. Raises
    ``RunError`` (nothing written) when the directory holds another run's settings or a partial
    checkpoint. Only the main process (``main``) checks and writes; the others resume when there
    is a complete checkpoint (a failed check on the main process ends the whole job).
    """
    run = Path(run)
    record = to_plain(record)
    if not main:  # the main process checks and writes; the others follow its checkpoint
        return not force_new and checkpoint_status(run) == "complete"
    if run.exists() and not run.is_dir():
        raise RunError(f"{run}: is a file, not a run directory")
    config_path = run / "config.json"
    if force_new:
        for name in RUN_FILES:
            p = run / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
        run.mkdir(parents=True, exist_ok=True)
        save_config(record, run)
        return False
    status = checkpoint_status(run)
    if config_path.exists():
        try:
            recorded = json.loads(config_path.read_text())
        except json.JSONDecodeError as e:
            raise RunError(f"{config_path}: not valid JSON ({e}); pass --loop.force-new to start over") from e
        changes = config_changes(recorded, record)
        if changes:
            shown = "; ".join(changes[:6]) + (f"; and {len(changes) - 6} more" if len(changes) > 6 else "")
            raise RunError(
                f"{run} holds a run with other settings ({shown}): rerun with its settings to resume it, "
                "or pass --loop.force-new (deletes its checkpoint) or a new --out"
            )
        if status.startswith("partial"):
            raise RunError(f"{run}: {status}; pass --loop.force-new to start over (deletes it)")
        return status == "complete"
    if status != "none":
        raise RunError(
            f"{run}: holds a checkpoint ({status}) but no config.json, so it cannot be resumed; "
            "pass --loop.force-new to start over (deletes it) or choose a new --out"
        )
    run.mkdir(parents=True, exist_ok=True)
    save_config(record, run)
    return False
