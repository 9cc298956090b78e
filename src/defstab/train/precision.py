"""Training precision: fp32, or bf16 autocast where the hardware computes it natively.

bf16 is a recorded setting, never a silent one: a run's ``config.json`` (and a network's
key in an experiment) holds the precision that was *used* — ``"fp32"`` or ``"bf16"``,
never ``"auto"`` — so networks trained in different precisions are never shared.

Support is detected, not assumed: on CPU, bf16 dot products (AVX-512 BF16 or AMX) through
oneDNN; on CUDA, a card that computes bf16 (Ampere and newer). ``DEFSTAB_CPU_BF16=0``
makes this machine's CPU count as one without bf16 (to see the refusal and the fallback
on a machine that has it).
"""

from __future__ import annotations

import os

PRECISIONS = ("fp32", "bf16", "auto")


def check_precision(name: str) -> str:
    """``name`` if it is one of PRECISIONS, else one sentence."""
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}.")
    return name


def bf16_supported(device) -> bool:
    """Whether ``device`` (a torch.device) computes bf16 matrix products in hardware."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu" or os.environ.get("DEFSTAB_CPU_BF16") == "0":
        return False
    cpu = torch.cpu
    native = (
        getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(cpu, "_is_amx_tile_supported", lambda: False)()
    )
    return bool(native and torch.backends.mkldnn.is_available())


def resolve_precision(requested: str, device) -> tuple[str, str | None]:
    """The precision to train in, and a sentence for the user when ``auto`` fell back.

    Args:
        requested: ``"fp32"``, ``"bf16"`` or ``"auto"`` (bf16 where supported, else fp32).
        device: where training runs.

    Returns:
        (``"fp32"`` or ``"bf16"``, a note or None).

    Raises:
        ValueError: ``bf16`` on a device without bf16 support, or an unknown name.
    """
    if check_precision(requested) == "fp32":
        return "fp32", None
    if bf16_supported(device):
        return "bf16", None
    where = "this CPU has no bf16 dot products" if device.type == "cpu" else f"{device} has no bf16"
    if requested == "bf16":
        raise ValueError(f"--precision bf16 was asked for, but {where}; use fp32 or auto.")
    return "fp32", f"precision auto: {where}, so training runs in fp32."


def autocast(device, precision: str):
    """The autocast context of ``precision`` on ``device`` (a no-op for fp32)."""
    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
