"""``wm import-official``: an official V-JEPA 2 encoder checkpoint as one of our encoder runs.

    wm import-official --checkpoint vitg.pt --encoder vitg --out runs/enc-vitg
    wm train-ac --data data/my_robot --encoder runs/enc-vitg --out runs/ac-vitg --preset vjepa2-ac --pool 0

Nothing is downloaded: the checkpoint is a local file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from worldmodel.official import import_encoder


@dataclass(frozen=True)
class ImportOfficialConfig:
    """Turn an official V-JEPA 2 encoder checkpoint (a local file) into one of our encoder runs."""

    checkpoint: Path
    """official checkpoint file (.pt / .pth with encoder / target_encoder state dicts)"""
    encoder: Literal["vitl", "vith", "vitg", "vitg-384"]
    """which published encoder it holds"""
    out: Path
    """encoder run directory to write"""
    key: Literal["target_encoder", "encoder"] = "target_encoder"
    """which of its encoders to import (V-JEPA evaluates the target encoder)"""


def main(cfg: ImportOfficialConfig) -> Path:
    out = import_encoder(cfg.checkpoint, cfg.encoder, cfg.out, cfg.key)
    print(f"[import-official] {cfg.encoder} from {cfg.checkpoint} -> {out}")
    return out
