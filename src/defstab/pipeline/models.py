"""The model and the normalisation a run uses, resolved the same way from the command
line and from Python.

:func:`resolve_model` turns :class:`~defstab.requests.model.ModelOptions` (or a module
the caller built) into the model and the settings every output records — above all
``settings["weights"]``: a checkpoint, published weights, or random (untrained).
:func:`choose_normalization` is the one normalisation rule, and says which part of it
decided (:class:`Normalization`), so that every output can state it.
"""

from __future__ import annotations

from dataclasses import dataclass

from defstab.requests.model import ModelOptions

RANDOM_WEIGHTS = "random (untrained)"
#: the family of a model handed over as a Python object
OBJECT = "object"


def model_options(model) -> ModelOptions | None:
    """``model`` as :class:`ModelOptions` (a name is a ``--model``), or None for a module."""
    if isinstance(model, ModelOptions):
        return model
    if isinstance(model, str):
        return ModelOptions(model=model)
    return None


def data_options(data):
    """``data`` as :class:`DataOptions` (a string is a ``--data``)."""
    from defstab.requests.model import DataOptions

    return DataOptions(data=data) if isinstance(data, str) else data


def resolve_model(model, in_channels: int | None = None):
    """(model, settings): ``model`` is :class:`ModelOptions`, a model name, or an
    ``nn.Module`` used as it is. Loads the checkpoint if one is given. Any exception of
    the model's forward is one sentence naming it (:func:`defstab.tap.guard_forward`)."""
    import torch

    from defstab.tap import guard_forward

    options = model_options(model)
    if options is None:
        if not isinstance(model, torch.nn.Module):
            raise ValueError(
                f"model must be a model name, ModelOptions or a torch.nn.Module, got "
                f"{type(model).__name__}."
            )
        name = type(model).__name__
        settings = {"model": name, "family": OBJECT, "weights": "those of the given module"}
        return guard_forward(model, name), settings
    built, settings = _resolve(options, in_channels)
    return guard_forward(built, str(settings["model"])), settings


def _resolve(options: ModelOptions, in_channels):
    from defstab.io.checkpoint import load_checkpoint
    from defstab.models.loading import build_model, model_family

    if options.run:
        return _resolve_run(options)
    if options.step is not None:
        raise ValueError("--step chooses a checkpoint of --run DIR; give --run too.")
    if not options.model:
        raise ValueError("give --model NAME (or --run DIR of a 'defstab train' folder).")
    kwargs = model_kwargs(options, in_channels)
    model = build_model(
        options.model,
        pretrained=options.pretrained,
        weights_option=options.pretrained_option,
        **kwargs,
    )
    family = model_family(options.model)
    settings = {"model": options.model, "model_kwargs": kwargs, "pretrained": options.pretrained}
    if family in ("timm", "torchvision"):
        from defstab.models.input_config import model_input_config

        config = model_input_config(model, options.model)
        if config is not None:  # its own size and mean/std, unless --image-size/--normalize
            settings["input_config"] = config.record()
            settings["normalize_model"] = config.normalization()
    if options.checkpoint:
        settings["checkpoint"] = options.checkpoint
        settings["checkpoint_metadata"] = load_checkpoint(model, options.checkpoint)
        settings["weights"] = f"checkpoint {options.checkpoint}"
    else:
        settings["weights"] = "pretrained (published)" if options.pretrained else RANDOM_WEIGHTS
    return model, settings


def model_kwargs(options: ModelOptions, in_channels: int | None = None, seed=None) -> dict:
    """The keyword arguments of :func:`~defstab.models.loading.build_model` the model
    options ask for: every family gets its init seed (``init_seed``, else ``seed``, else
    0) and its number of classes; registry models also their width and input channels.
    Recorded in ``config.json`` as ``model_kwargs``, so a run can be rebuilt exactly."""
    from defstab.models.loading import model_family

    registry = model_family(options.model) == "registry"
    init = options.init_seed if options.init_seed is not None else seed
    kwargs = {"seed": 0 if init is None else init}
    if options.num_classes:
        kwargs["num_classes"] = options.num_classes
    if options.padding:
        kwargs["padding"] = options.padding
    if registry:
        kwargs["width"] = options.width or 1.0
        if in_channels:
            kwargs["in_channels"] = in_channels
    elif options.width is not None:  # refused by build_model, after the model's name is checked
        kwargs["width"] = options.width
    return kwargs


def _resolve_run(options: ModelOptions):
    from defstab.models.loading import load_run

    clash = [
        opt
        for opt, value in [
            ("--model", options.model),
            ("--checkpoint", options.checkpoint),
            ("--width", options.width),
            ("--init-seed", options.init_seed),
            ("--num-classes", options.num_classes),
            ("--padding", options.padding),
            ("--pretrained", options.pretrained or None),
        ]
        if value is not None
    ]
    if clash:
        raise ValueError(f"--run takes the model from the train folder; drop {', '.join(clash)}.")
    model, info = load_run(options.run, options.step)
    settings = {
        "model": info["model"],
        "model_kwargs": info["model_kwargs"],
        "run": str(options.run),
        "checkpoint": str(info["checkpoint"]),
        "step": info["step"],
        "normalize_trained": info.get("normalize"),
        "weights": f"trained: {info['checkpoint']} (step {info['step']})"
        if info["step"] > 0
        else f"at initialisation: {info['checkpoint']} (step 0, before any training)",
    }
    return model, settings


@dataclass(frozen=True)
class Normalization:
    """The statistics a run normalises its images with, and why: ``name`` (a key of
    :data:`defstab.data.normalize.STATS`, or a model's own {"mean", "std"}) and
    ``reason``, the part of the rule that chose it (said in every output)."""

    name: str | dict
    reason: str

    def describe(self) -> str:
        shown = self.name if isinstance(self.name, str) else "the model's own mean/std"
        return f"{shown} ({self.reason})"


def choose_normalization(given, settings: dict, data) -> Normalization:
    """The one rule, the same for every command and for Python: the normalisation asked
    for (``--normalize`` / ``DataOptions.normalize``); else the one the train folder
    trained with; else the model's own (torchvision/timm input configs); else ImageNet's
    for torchvision/timm models; else the statistics of the data (CIFAR-10's on CIFAR-10,
    MNIST's on MNIST, ImageNet's on folders, none for tensor files) — what ``defstab
    train`` trains registry, file and Python-object models with."""
    from defstab.data.spec import DataSpec
    from defstab.models.loading import model_family

    if given:
        return Normalization(given, "asked for")
    if settings.get("normalize_trained"):
        return Normalization(settings["normalize_trained"], "what the train folder trained with")
    if settings.get("normalize_model"):
        return Normalization(settings["normalize_model"], "the model's own input config")
    family = settings.get("family") or model_family(str(settings["model"]))
    if family in ("torchvision", "timm"):
        return Normalization("imagenet", f"what {family} models expect")
    spec = data if isinstance(data, DataSpec) else DataSpec.parse(data)
    what = {"registry": "registry models", "file": "models from a file",
            OBJECT: "models given as objects"}[family]  # fmt: skip
    return Normalization(
        spec.normalization,
        f"the data's statistics, which defstab train uses and {what} are taken to expect; "
        'give --normalize none (in Python DataOptions(normalize="none")) if yours does not',
    )


def make_preprocess(normalization: Normalization, channels: int, device):
    """The normalisation module on ``device``, or None for none."""
    from defstab.data.normalize import make_normalize

    module = make_normalize(normalization.name, channels)
    return module.to(device) if module is not None else None


def use_class_scores(model, probe, output_key, settings: dict, finite: bool = True) -> int:
    """Make ``model`` return its class scores (N, classes) by the output contract of
    :mod:`defstab.models.outputs`, record where they come from in ``settings["output"]``
    (``config.json``) and say it once on stderr when the output is not a plain tensor.

    ``probe`` is a small batch shaped like the inputs to come. Returns the number of class
    scores. With ``finite`` (every command but ``train``, whose own divergence check
    speaks of the learning rate) non-finite scores are one sentence naming the model, on
    the probe and on every later batch.
    """
    from defstab.models.outputs import return_class_scores, state_contract

    name = settings.get("model") if finite else None
    contract = return_class_scores(model, probe, output_key, model_name=name and str(name))
    settings["output"] = contract.record()
    state_contract(contract)
    return contract.classes


def check_scores_cover(scores: int, data, model_name: str) -> None:
    """One sentence when the model gives fewer class scores than ``data`` has classes (a
    true label would index past them)."""
    if scores < len(data.classes):
        raise ValueError(
            f"{model_name} gives {scores} class scores but {data.name} has "
            f"{len(data.classes)} classes; give a model with one output per class."
        )


def is_random(settings: dict) -> bool:
    return settings.get("weights") == RANDOM_WEIGHTS


def weights_caveat(settings: dict) -> str | None:
    """The warning every output of an untrained network carries, or None."""
    if is_random(settings):
        return (
            "RANDOM WEIGHTS: this model was not trained and no checkpoint was loaded "
            "(--checkpoint, --run or --pretrained); the numbers describe an untrained network."
        )
    if settings.get("run") and settings.get("step") == 0:
        return (
            "AT INITIALISATION: step 0 of the train folder is the network before any "
            "training step; the numbers describe an untrained network."
        )
    return None
