"""Arguments shared by the commands that take a model or data, and their resolution.

Every check a command can make before its expensive work lives here, so that a mistake
ends in one sentence before anything is computed or written.
"""

from __future__ import annotations

import sys
from pathlib import Path

RANDOM_WEIGHTS = "random (untrained)"


def pick_device(name: str):
    """:func:`defstab.tap.pick_device`, imported when called: this module (every command's
    options) imports no torch, so ``defstab --help`` and the docs build need none."""
    from defstab.tap import pick_device as pick

    return pick(name)


def add_model_args(p, checkpoint: bool = True, scores: bool = False) -> None:
    """The model options; ``scores``: the command reads class scores (``--output-key``)."""
    p.add_argument(
        "--model",
        default=None,
        help="registry name (see 'defstab models'), torchvision:NAME, timm:NAME, "
        "or path/to/file.py:factory" + (" (not needed with --run)" if checkpoint else ""),
    )
    if checkpoint:
        p.add_argument(
            "--checkpoint",
            help="weights: .safetensors (a 'defstab train' checkpoint or a state dict) or a "
            "torch file (loaded weights only)",
        )
        p.add_argument(
            "--run",
            metavar="DIR",
            help="a 'defstab train' folder, or an experiment's OUT/networks/<network> folder: "
            "its model, settings and latest checkpoint",
        )
        p.add_argument("--step", type=int, default=None, help="with --run: this step's checkpoint")
    p.add_argument(
        "--pretrained",
        action="store_true",
        help="download published weights (torchvision/timm; needs the internet)",
    )
    p.add_argument("--width", type=float, default=None, help="registry models: channel multiplier")
    p.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help="outputs of the classifier (registry, torchvision and timm models)",
    )
    p.add_argument(
        "--padding",
        default=None,
        choices=["zeros", "circular"],
        help="how convolutions pad: circular wraps around (with aps downsampling, exact "
        "invariance to circular shifts); default: the model's own (zeros)",
    )
    p.add_argument(
        "--init-seed",
        type=int,
        default=None,
        help="seed of the random initial weights, any model (default 0; for train, --seed)",
    )

    if scores:
        p.add_argument(
            "--output-key",
            default=None,
            metavar="KEY",
            help="where the class scores are in the model's output: a dict key, a tuple "
            "index or an attribute (default: the tensor, element 0, 'logits', .logits)",
        )


def use_class_scores(model, probe, args, settings: dict, finite: bool = True) -> int:
    """Make ``model`` return its class scores (N, classes) by the output contract of
    :mod:`defstab.models.outputs`, record where they come from in ``settings["output"]``
    (``config.json``) and say it once on stderr when the output is not a plain tensor.

    ``probe`` is a small batch shaped like the inputs to come (the command's own images).
    Returns the number of class scores. With ``finite`` (every command but ``train``,
    whose own divergence check speaks of the learning rate) non-finite scores are one
    sentence naming the model, on the probe and on every later batch.
    """
    from defstab.models.outputs import return_class_scores, state_contract

    key = getattr(args, "output_key", None)
    name = settings.get("model") if finite else None
    contract = return_class_scores(model, probe, key, model_name=name and str(name))
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


def add_data_args(p) -> None:
    p.add_argument(
        "--data",
        required=True,
        help="folder:PATH (ImageFolder), cifar10:PATH (batches or JPEG folders), "
        "mnist:PATH (IDX files), or a .pt/.npy file of images",
    )
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="resize+centre-crop folder images (default: the model's input size)",
    )
    p.add_argument(
        "--normalize",
        default=None,
        help="imagenet, cifar10, mnist or none (default: what the model expects)",
    )


def add_read_workers(p) -> None:
    """--read-workers: the images of a data set are read chunk by chunk as they are
    measured; this many processes read (and decode) image files ahead of the model."""
    p.add_argument(
        "--read-workers",
        type=int,
        default=0,
        help="processes reading image files (folder data) while the model runs; default 0: "
        "read in this process",
    )


def report_skipped(
    skipped: list[dict], indices, out: Path, measured: int, shown: Path | None = None
) -> int:
    """skipped.csv (data index, path, reason) of the unreadable images and one warning;
    an earlier run's list is removed when none was skipped. Returns the count."""
    from defstab.io.tables import write_csv

    if not skipped:
        (out / "skipped.csv").unlink(missing_ok=True)
        return 0
    rows = [{"image": int(indices[s["item"]]), "path": s["path"], "reason": s["reason"]}
            for s in skipped]  # fmt: skip
    write_csv(out / "skipped.csv", rows)
    first = rows[0]
    warn(
        f"{len(rows)} unreadable image(s) skipped, e.g. {first['path']} ({first['reason']}); "
        f"all are listed in {(shown or out) / 'skipped.csv'}; {measured} images were measured."
    )
    return len(rows)


def check_out_folder(path: str | Path, option: str = "--out") -> Path:
    """The output folder, checked before any work: it may exist (as a folder) or not."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{option} {out} is a file; give a folder for the results.")
    parent = next((p for p in [out, *out.parents] if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ValueError(f"{option} {out} lies inside the file {parent}.")
    return out


def final_out(args) -> Path:
    """The result folder the user named: ``--out`` itself, or — while the command writes
    into its staging folder (:mod:`defstab.io.result_folder`) — the folder it becomes."""
    return Path(getattr(args, "_final_out", None) or args.out)


def warn(message: str) -> None:
    """A warning on stderr: the command goes on."""
    print(f"defstab: warning: {message}", file=sys.stderr)


def warn_inferred_strides(layers) -> None:
    """Say which layers' strides could only be inferred (input width / map width)."""
    from defstab.models.strides import STRIDES_INFERRED

    layers = list(dict.fromkeys(layers))
    if layers:
        warn(STRIDES_INFERRED.format(layers=", ".join(layers)))


def resolve_model(args, in_channels: int | None = None):
    """(model, settings) from the model arguments; loads the checkpoint if given.

    ``settings["weights"]`` says what the weights are: a checkpoint, published weights, or
    random (untrained) — every output shows it. Any exception of the model's forward is
    one sentence naming it (:func:`defstab.tap.guard_forward`).
    """
    from defstab.tap import guard_forward

    model, settings = _resolve(args, in_channels)
    return guard_forward(model, str(settings["model"])), settings


def _resolve(args, in_channels):
    from defstab.io.checkpoint import load_checkpoint
    from defstab.models.loading import build_model, model_family

    run = getattr(args, "run", None)
    if run:
        return _resolve_run(args)
    if getattr(args, "step", None) is not None:
        raise ValueError("--step chooses a checkpoint of --run DIR; give --run too.")
    if not args.model:
        raise ValueError("give --model NAME (or --run DIR of a 'defstab train' folder).")
    kwargs = model_kwargs(args, in_channels)
    option = getattr(args, "_pretrained_option", "--pretrained")
    model = build_model(args.model, pretrained=args.pretrained, weights_option=option, **kwargs)
    settings = {"model": args.model, "model_kwargs": kwargs, "pretrained": args.pretrained}
    if model_family(args.model) in ("timm", "torchvision"):
        from defstab.models.input_config import model_input_config

        config = model_input_config(model, args.model)
        if config is not None:  # its own size and mean/std, unless --image-size/--normalize
            settings["input_config"] = config.record()
            settings["normalize_model"] = config.normalization()
    ckpt = getattr(args, "checkpoint", None)
    if ckpt:
        settings["checkpoint"] = ckpt
        settings["checkpoint_metadata"] = load_checkpoint(model, ckpt)
        settings["weights"] = f"checkpoint {ckpt}"
    else:
        settings["weights"] = "pretrained (published)" if args.pretrained else RANDOM_WEIGHTS
    return model, settings


def model_kwargs(args, in_channels: int | None = None, seed: int | None = None) -> dict:
    """The keyword arguments of :func:`~defstab.models.loading.build_model` that the model
    options ask for: every family gets its init seed (``--init-seed``, else ``seed``, else 0)
    and ``--num-classes``; registry models also their width and input channels. Recorded
    in ``config.json`` as ``model_kwargs``, so a run can be rebuilt exactly."""
    from defstab.models.loading import model_family

    registry = model_family(args.model) == "registry"
    init = args.init_seed if args.init_seed is not None else seed
    kwargs = {"seed": 0 if init is None else init}
    if args.num_classes:
        kwargs["num_classes"] = args.num_classes
    if getattr(args, "padding", None):
        kwargs["padding"] = args.padding
    if registry:
        kwargs["width"] = args.width or 1.0
        if in_channels:
            kwargs["in_channels"] = in_channels
    elif args.width is not None:  # refused by build_model, after the model's name is checked
        kwargs["width"] = args.width
    return kwargs


def _resolve_run(args):
    from defstab.models.loading import load_run

    clash = [
        opt
        for opt, value in [
            ("--model", args.model),
            ("--checkpoint", getattr(args, "checkpoint", None)),
            ("--width", args.width),
            ("--init-seed", args.init_seed),
            ("--num-classes", args.num_classes),
            ("--padding", getattr(args, "padding", None)),
            ("--pretrained", args.pretrained or None),
        ]
        if value is not None
    ]
    if clash:
        raise ValueError(f"--run takes the model from the train folder; drop {', '.join(clash)}.")
    model, info = load_run(args.run, args.step)
    settings = {
        "model": info["model"],
        "model_kwargs": info["model_kwargs"],
        "run": str(args.run),
        "checkpoint": str(info["checkpoint"]),
        "step": info["step"],
        "normalize_trained": info.get("normalize"),
        "weights": f"trained: {info['checkpoint']} (step {info['step']})"
        if info["step"] > 0
        else f"at initialisation: {info['checkpoint']} (step 0, before any training)",
    }
    return model, settings


def pick_normalization(given, settings: dict, data_spec, channels: int, device):
    """``(name, module or None)``: the normalization a command applies to its images —
    ``--normalize`` if given, else what the train folder used, else the model's own
    (torchvision/timm), else the default for the model family and data; on ``device``."""
    from defstab.data.normalize import default_normalization, make_normalize
    from defstab.models.loading import model_family

    name = (
        given
        or settings.get("normalize_trained")
        or settings.get("normalize_model")
        or default_normalization(model_family(settings["model"]), data_spec)
    )
    module = make_normalize(name, channels)
    return name, (module.to(device) if module is not None else None)


def is_random(settings: dict) -> bool:
    return settings.get("weights") == RANDOM_WEIGHTS


def weights_caveat(settings: dict) -> str | None:
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
