"""Checkpoints that never execute code: safetensors, or ``torch.load(weights_only=True)``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from defstab.io.atomic import atomic_path, strict_json


def save_checkpoint(
    model: nn.Module, path: str | Path, metadata: dict[str, Any] | None = None
) -> Path:
    """Write the state dict as safetensors, with JSON metadata in the header, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    # standard JSON in the header (a NaN accuracy becomes null), like every JSON we write
    meta = {"defstab": json.dumps(strict_json(metadata or {}), default=str, allow_nan=False)}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return path


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, metadata) from a .safetensors file or a torch file (weights only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
                meta = json.loads((f.metadata() or {}).get("defstab", "{}"))
            return state, meta
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt files end here, whatever the reader raises
        raise ValueError(f"cannot read checkpoint {path} ({type(e).__name__}: {e}).") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                return obj[key], {
                    k: v for k, v in obj.items() if not isinstance(v, dict | torch.Tensor)
                }
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj, {}
    raise ValueError(f"{path} does not hold a state dict.")


def read_tensor(path: str | Path, what: str = "file") -> torch.Tensor:
    """A tensor saved with ``torch.save``, read with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or unsafe files end here, whatever torch raises
        raise ValueError(f"cannot read {what} {path} ({type(e).__name__}: {e}).") from None


MODEL_PREFIX = "model."  # training checkpoints bundle model.* and optim.* tensors


def model_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's weights from a state dict: a training checkpoint's ``model.*`` tensors
    (prefix removed, optimizer state left out), or the state dict itself."""
    if state and all(k.startswith((MODEL_PREFIX, "optim.")) for k in state):
        return {k[len(MODEL_PREFIX) :]: v for k, v in state.items() if k.startswith(MODEL_PREFIX)}
    return state


def load_checkpoint(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Load weights into ``model`` (a plain state dict or a ``defstab train`` checkpoint);
    a mismatch is reported with the offending keys."""
    state, meta = read_checkpoint(path)
    own_keys = model.state_dict()
    if not all(k.startswith(MODEL_PREFIX) for k in own_keys):
        state = model_state(state)
    own = own_keys
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}" + (" …" if len(missing) > 5 else ""))
        if unexpected:
            parts.append(
                f"unexpected keys {unexpected[:5]}" + (" …" if len(unexpected) > 5 else "")
            )
        if shapes:
            parts.append(f"shape mismatches {shapes[:3]}")
        raise ValueError(f"checkpoint {path} does not fit the model: {'; '.join(parts)}.")
    model.load_state_dict(state)
    return meta
