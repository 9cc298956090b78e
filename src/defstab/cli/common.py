"""Arguments shared by the commands that take a model or data, and their resolution."""

from __future__ import annotations

from defstab.tap import pick_device  # noqa: F401  (re-exported for the commands)


def add_model_args(p, checkpoint: bool = True) -> None:
    p.add_argument(
        "--model",
        required=True,
        help="registry name (see 'defstab models'), torchvision:NAME, timm:NAME, "
        "or path/to/file.py:factory",
    )
    if checkpoint:
        p.add_argument("--checkpoint", help="weights: .safetensors or a torch file (weights only)")
    p.add_argument(
        "--pretrained",
        action="store_true",
        help="download published weights (torchvision/timm; needs the internet)",
    )
    p.add_argument("--width", type=float, default=1.0, help="registry models: channel multiplier")
    p.add_argument("--num-classes", type=int, default=None, help="registry models: outputs")
    p.add_argument(
        "--init-seed",
        type=int,
        default=None,
        help="registry models: init seed (default 0; for train, --seed)",
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


def resolve_model(args, in_channels: int | None = None):
    """(model, settings) from the model arguments; loads the checkpoint if given."""
    from defstab.io.checkpoint import load_checkpoint
    from defstab.models.loading import build_model, model_family

    kwargs = {}
    if model_family(args.model) == "registry":
        kwargs = {"width": args.width, "seed": args.init_seed or 0}
        if args.num_classes:
            kwargs["num_classes"] = args.num_classes
        if in_channels:
            kwargs["in_channels"] = in_channels
    model = build_model(args.model, pretrained=args.pretrained, **kwargs)
    settings = {"model": args.model, "model_kwargs": kwargs, "pretrained": args.pretrained}
    ckpt = getattr(args, "checkpoint", None)
    if ckpt:
        settings["checkpoint"] = ckpt
        settings["checkpoint_metadata"] = load_checkpoint(model, ckpt)
    return model, settings
