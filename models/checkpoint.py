"""Resumable checkpoints: weights in safetensors, optimiser/scheduler/RNG/loader position in a torch file.

Layout of a checkpoint folder: `mae.safetensors` (encoder.*, decoder and projector weights),
`config.json` (model size, in_chans, img_size, step, the training config) and `trainer_state.pt`.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from models.hybrid_encoder import HybridEncoder, create_encoder

WEIGHTS_FILE, CONFIG_FILE, STATE_FILE = "mae.safetensors", "config.json", "trainer_state.pt"
_ENCODER_PREFIX = "encoder."


def rng_state() -> dict[str, Any]:
    """Global RNG states (python, numpy, torch CPU and CUDA)."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(folder: Path, model: torch.nn.Module, config: dict[str, Any], trainer_state: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (a new folder renamed over the old one)."""
    folder = Path(folder)
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp / WEIGHTS_FILE))
    (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=list))
    torch.save(trainer_state, tmp / STATE_FILE)
    shutil.rmtree(old, ignore_errors=True)  # left by a save interrupted after its rename
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def read_config(folder: str | Path) -> dict[str, Any]:
    """The config.json of a checkpoint folder."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass the checkpoint folder that pretrain() wrote")
    return json.loads(path.read_text())


def load_weights(folder: str | Path, model: torch.nn.Module) -> None:
    """Load mae.safetensors into a model of the same architecture (strict)."""
    with safe_open(str(Path(folder) / WEIGHTS_FILE), framework="pt") as f:
        model.load_state_dict({k: f.get_tensor(k) for k in f.keys()})  # noqa: SIM118 (safe_open is no dict)


def load_encoder(folder: str | Path, device: str | torch.device = "cpu") -> HybridEncoder:
    """The pretrained hybrid encoder of a checkpoint folder (decoder and projector are not loaded)."""
    config = read_config(folder)
    encoder = create_encoder(config["model"], in_chans=config["in_chans"], img_size=config["img_size"])
    with safe_open(str(Path(folder) / WEIGHTS_FILE), framework="pt", device=str(device)) as f:
        state = {k[len(_ENCODER_PREFIX):]: f.get_tensor(k) for k in f.keys() if k.startswith(_ENCODER_PREFIX)}  # noqa: SIM118
    encoder.load_state_dict(state)
    return encoder.to(device).eval()
