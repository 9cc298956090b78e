"""A model registry in the style of timm: ``register_model``, ``create_model``, ``list_models``."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from torch import nn

from defstab.errors import unknown_name_message  # noqa: F401  (re-exported: its old home)

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
#: Functions name -> factory (or None) for parametric families too large to list, such as
#: ``vgg_cifar_blurpool5``; consulted after the registered names.
_RESOLVERS: list[Callable[[str], Callable[..., nn.Module] | None]] = []


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: register ``fn`` under its own name."""
    if not fn.__module__.startswith("defstab.models.zoo"):
        _builtin()  # a user's name that clashes with a built-in one is caught here
    if fn.__name__ in _REGISTRY:
        raise ValueError(f"model {fn.__name__!r} is already registered.")
    _REGISTRY[fn.__name__] = fn
    return fn


def register_resolver(resolve: Callable[[str], Callable[..., nn.Module] | None]) -> None:
    """Add a resolver: ``resolve(name)`` returns a factory for ``name``, or None."""
    _RESOLVERS.append(resolve)


def _builtin() -> None:
    """Register defstab's own networks (importing the zoo registers them, once)."""
    import defstab.models.zoo  # noqa: F401


def _factory(name: str) -> Callable[..., nn.Module] | None:
    _builtin()
    if name in _REGISTRY:
        return _REGISTRY[name]
    return next((f for f in (r(name) for r in _RESOLVERS) if f is not None), None)


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style ``pattern`` (e.g. ``"vgg_cifar_*"``), sorted."""
    _builtin()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def is_model(name: str) -> bool:
    return _factory(name) is not None


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model, e.g. ``create_model("vgg_cifar_maxpool", width=0.25, seed=0)``."""
    factory = _factory(name)
    if factory is None:
        raise ValueError(unknown_name_message("model", name, list_models()))
    try:
        model = factory(**kwargs)
    except TypeError as e:
        raise ValueError(f"bad arguments for model {name!r}: {e}") from None
    check_native_size(name, model)
    return model


def check_native_size(name: str, model: nn.Module) -> None:
    """Refuse, in one sentence, a network that cannot run on inputs of its own native size
    (e.g. a blur filter wider than the small maps it must pad), found by a shapes-only
    forward pass on the ``meta`` device (no memory, no arithmetic)."""
    from defstab.tap import meta_forward

    size, channels = getattr(model, "input_size", None), getattr(model, "in_channels", None)
    if not (isinstance(size, int) and isinstance(channels, int)):
        return
    try:
        meta_forward(model, (channels, size, size))
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"{name} cannot run on its native {size}×{size} px inputs ({first}); "
            "choose a smaller filter size."
        ) from None
