"""Resolve a MODEL string: a registry name, ``torchvision:NAME``, ``timm:NAME`` or
``path/to/file.py:factory``."""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path

import torch
from torch import nn

from defstab.models.registry import create_model, is_model, list_models, unknown_name_message


def model_family(spec: str) -> str:
    """ "registry", "torchvision", "timm" or "file"."""
    if spec.startswith("torchvision:"):
        return "torchvision"
    if spec.startswith("timm:"):
        return "timm"
    if ".py:" in spec:
        return "file"
    return "registry"


def build_model(
    spec: str,
    pretrained: bool = False,
    *,
    seed: int | None = None,
    num_classes: int | None = None,
    padding: str | None = None,
    weights_option: str = "--pretrained",
    **registry_kwargs,
) -> nn.Module:
    """Build the model named by ``spec``, its random weights drawn from ``seed``.

    Args:
        spec: see the module docstring.
        pretrained: download the published weights (torchvision/timm only; needs the
            internet). Otherwise the model is randomly initialised.
        seed: the random initialisation (default 0) — for every family: registry models
            take it as their init seed; torchvision, timm and file models are constructed
            under ``torch.manual_seed(seed)`` (the caller's random state is restored), so
            the same spec and seed give the same weights.
        num_classes: outputs of the classifier (registry, torchvision, timm); None keeps the
            model's own. File models decide their own outputs and refuse it.
        padding: "circular" makes every convolution wrap around (registry models: their
            blur filters too; other families: :func:`use_circular_padding`); None or
            "zeros" leaves the model's own.
        weights_option: the option that asked for the published weights, named when
            their download fails.
        registry_kwargs: further keyword arguments for registry models (width, …).
    """
    from defstab.models.architectures import PADDINGS

    if padding is not None and padding not in PADDINGS:
        raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}.")
    family = model_family(spec)
    seed = 0 if seed is None else int(seed)
    classes = {} if num_classes is None else {"num_classes": int(num_classes)}
    if family == "registry":
        if pretrained:
            raise ValueError("registry models have no published weights; pass --checkpoint.")
        if not is_model(spec):
            raise ValueError(
                unknown_name_message("model", spec, list_models())
                + " (Or torchvision:NAME, timm:NAME, file.py:factory.)"
            )
        padded = {} if padding is None else {"padding": padding}
        return create_model(spec, seed=seed, **classes, **padded, **registry_kwargs)
    if family == "file" and classes:
        raise ValueError(
            f"--num-classes does not apply to {spec}: a file model decides its own outputs."
        )
    with seeded_construction(seed), _download_named(spec, pretrained, weights_option):
        if family == "torchvision":
            model = _torchvision_model(spec.split(":", 1)[1], pretrained, classes)
        elif family == "timm":
            model = _timm_model(spec.split(":", 1)[1], pretrained, classes)
        else:
            model = _file_model(spec)
    if registry_kwargs:  # after the build: an unknown name is the first thing to hear
        options = ", ".join(f"--{k.replace('_', '-')}" for k in sorted(registry_kwargs))
        raise ValueError(f"{options} apply to registry models only, not to {spec}.")
    return use_circular_padding(model) if padding == "circular" else model


@contextlib.contextmanager
def _download_named(spec: str, pretrained: bool, option: str):
    """A failed download of published weights is one sentence naming the weights and the
    option that asked for them (urllib alone says only ``<urlopen error …>``)."""
    try:
        yield
    except ValueError:
        raise
    except Exception as e:
        if not pretrained:
            raise
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ValueError(
            f"the published weights of {spec} (asked for by {option}) could not be "
            f"downloaded: {reason}; connect to the internet, or give the weights as a file "
            "(--checkpoint) instead."
        ) from None


def use_circular_padding(model: nn.Module) -> nn.Module:
    """Make every padded ``nn.Conv2d`` of ``model`` pad circularly (in place; returned).

    Pooling layers that pad (a ResNet stem's max-pool) keep their own padding: such a
    network is not exactly invariant to circular shifts, whatever its downsampling.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.padding not in ((0, 0), "valid"):
            module.padding_mode = "circular"  # its pad widths were computed in __init__
    return model


@contextlib.contextmanager
def seeded_construction(seed: int):
    """Run the block under ``torch.manual_seed(seed)`` and give the caller its random state
    back afterwards (CPU and every GPU): building a model draws its initial weights."""
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
        torch.manual_seed(seed)
        yield


def _torchvision_model(name: str, pretrained: bool, classes: dict) -> nn.Module:
    try:
        import torchvision.models as tvm
    except Exception as e:
        raise ValueError(f"torchvision cannot be imported here ({e}).") from None
    names = tvm.list_models()
    if name not in names:
        raise ValueError(unknown_name_message("torchvision model", name, names))
    if pretrained and classes:
        published = len(tvm.get_model_weights(name).DEFAULT.meta["categories"])
        if classes["num_classes"] != published:
            raise ValueError(
                f"torchvision's published weights of {name} classify {published} classes, not "
                f"{classes['num_classes']}; train from random weights, or use timm:NAME "
                "(which fits a new classifier)."
            )
        classes = {}  # torchvision takes num_classes only without weights
    try:
        return tvm.get_model(name, weights="DEFAULT" if pretrained else None, **classes)
    except TypeError as e:
        raise ValueError(f"torchvision:{name} does not take these arguments: {e}") from None


def _timm_model(name: str, pretrained: bool, classes: dict) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise ValueError("timm models need timm: pip install timm") from None
    if not timm.list_models(name):
        raise ValueError(unknown_name_message("timm model", name, timm.list_models()))
    return timm.create_model(name, pretrained=pretrained, **classes)


def _file_model(spec: str) -> nn.Module:
    path, _, factory = spec.rpartition(":")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    mod_spec = importlib.util.spec_from_file_location(f"defstab_user_{path.stem}", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)  # the user's own code, named on the command line
    if not callable(getattr(module, factory, None)):
        raise ValueError(f"{path} has no callable {factory!r}.")
    model = getattr(module, factory)()
    if not isinstance(model, nn.Module):
        raise ValueError(f"{path}:{factory}() returned {type(model).__name__}, not an nn.Module.")
    return model


def native_input_size(model: nn.Module, spec: str) -> int | None:
    """The size the model was made for: registry models say so; timm and torchvision
    models as their library's input settings say (see :mod:`defstab.models.input_config`),
    else 224."""
    size = getattr(model, "input_size", None)
    if isinstance(size, int) and size > 0:
        return size
    if model_family(spec) in ("torchvision", "timm"):
        from defstab.models.input_config import model_input_config

        config = model_input_config(model, spec)
        return config.size if config is not None else 224
    return None


def _network_config(run: Path, record: dict) -> dict:
    """A train folder's config.json fields from an experiment's ``network.json``: the model
    and its settings from the spec, the normalisation of its data."""
    from defstab.data.spec import DataSpec

    spec = record.get("spec")
    if not isinstance(spec, dict) or "model" not in spec:
        raise ValueError(f"{run / 'network.json'} holds no network spec.")
    return {
        "command": "train",
        "model": spec["model"],
        "model_kwargs": dict(spec.get("model_kwargs", {})),
        "normalize": DataSpec.parse(spec["data"]).normalization,
        # the experiment built it for its data's channels and classes, which the spec does
        # not record: read them from the checkpoint
        "shapes_from_checkpoint": True,
    }


def _input_output_sizes(name: str, kwargs: dict, checkpoint) -> dict:
    """``in_channels`` and ``num_classes`` of a registry network, from the checkpoint: the
    input channels of its first 4-D weight and the rows of its last 2-D weight."""
    from defstab.io.checkpoint import model_state, read_checkpoint

    state = model_state(read_checkpoint(checkpoint)[0])
    order = list(build_model(name, **kwargs).state_dict())
    convs = [k for k in order if k in state and state[k].ndim == 4]
    linears = [k for k in order if k.endswith("weight") and k in state and state[k].ndim == 2]
    sizes = {}
    if convs:
        sizes["in_channels"] = int(state[convs[0]].shape[1])
    if linears:
        sizes["num_classes"] = int(state[linears[-1]].shape[0])
    return sizes


def load_run(run_dir, step: int | None = None) -> tuple[nn.Module, dict]:
    """The model of a ``defstab train`` folder — or of an experiment's network folder
    (``OUT/networks/<model>-seed<s>-<hash>/``, read from its ``network.json``) — with the
    weights of its latest checkpoint (or of ``step``).

    Returns:
        (model in eval mode, info): info holds ``model``, ``model_kwargs``, ``normalize``,
        ``checkpoint`` (path) and ``step``.

    Example: ``model, info = load_run("runs/maxpool")`` then measure ``model``.
    """
    import json

    from defstab.io.checkpoint import load_checkpoint

    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"train folder not found: {run}")
    cfg_path = run / "config.json"
    if not cfg_path.exists() and (run / "network.json").exists():
        cfg_path = run / "network.json"
    try:
        config = json.loads(cfg_path.read_text())
    except FileNotFoundError:
        raise ValueError(
            f"{run} is neither a 'defstab train' folder (no config.json) nor an experiment's "
            "network folder (no network.json)."
        ) from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{cfg_path} is not valid JSON ({e}).") from None
    if cfg_path.name == "network.json":
        config = _network_config(run, config)
    if config.get("command") != "train":
        raise ValueError(f"{run} is not a 'defstab train' folder (its config.json is not).")
    checkpoints = sorted((run / "checkpoints").glob("step_*.safetensors"))
    if not checkpoints:
        raise ValueError(f"{run} has no checkpoints yet (checkpoints/step_*.safetensors).")
    steps = {int(p.stem.split("_")[1]): p for p in checkpoints}
    if step is None:
        step = max(steps)
    elif step not in steps:
        raise ValueError(
            f"{run} has no checkpoint at step {step}; steps: "
            + ", ".join(map(str, sorted(steps)[:20]))
        )
    kwargs = config.get("model_kwargs", {})
    if config.get("shapes_from_checkpoint"):
        kwargs = kwargs | _input_output_sizes(config["model"], kwargs, steps[step])
    model = build_model(config["model"], **kwargs)
    load_checkpoint(model, steps[step])
    info = {
        "model": config["model"],
        "model_kwargs": kwargs,
        "normalize": config.get("normalize"),
        "checkpoint": steps[step],
        "step": step,
    }
    return model.eval(), info
