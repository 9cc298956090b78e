"""``defstab models``: list the registry with parameter counts and FLOPs per image; with
``--strides``, each representation point's cumulative stride s and the s² shifted copies
that full translation invariance would need there (Azulay & Weiss)."""

from __future__ import annotations

HELP = "list the registered networks"  # one line in `defstab --help`


def add_parser(sub):
    p = sub.add_parser("models", help=HELP)
    p.add_argument("pattern", nargs="?", default="*", help="shell pattern, e.g. 'vgg_cifar_*'")
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier (default 1.0)")
    p.add_argument(
        "--strides",
        action="store_true",
        help="per representation point: cumulative stride s and the s² shifted copies full "
        "translation invariance needs there; PATTERN may also be torchvision:NAME or "
        "timm:NAME (built with random weights, no download)",
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="--strides of torchvision/timm models: input side (default: the model's own)",
    )
    return p


def run(args) -> None:
    import fnmatch

    # the architectures as data: no torch import, so the listing answers at once
    from defstab.models.architectures import describe, registered_names

    if args.strides:
        return _strides(args)
    names = [n for n in registered_names() if fnmatch.fnmatch(n, args.pattern)]
    if not names:
        raise ValueError(f"no registered model matches {args.pattern!r}.")
    rows = [describe(name, args.width) for name in names]
    width = max(len("model"), *(len(r["name"]) for r in rows))
    print(f"{'model':{width}s} {'input':>11s} {'layers':>6s} {'params':>12s} {'GFLOPs/img':>11s}")
    for r in rows:
        print(
            f"{r['name']:{width}s} {'x'.join(map(str, r['input'])):>11s} {r['layers']:6d} "
            f"{r['params']:12,d} {r['flops'] / 1e9:11.3f}"
        )
    sized = [n for n in names if n.endswith("blurpool")]
    if sized:
        print(
            "blurpool (3 taps) and maxblurpool (4 taps, Zhang 2019's default) take another "
            f"filter size 1…7 as a suffix, e.g. {sized[0]}5 (a size too wide for the "
            "network's smallest maps is refused when the model is built)."
        )


def _strides(args) -> None:
    from defstab.models.architectures import registered_names

    if ":" in args.pattern:  # torchvision:NAME, timm:NAME — needs torch
        tables = [(args.pattern, _measured_strides(args.pattern, args.image_size))]
    else:
        import fnmatch

        from defstab.models.architectures import parse_name
        from defstab.models.strides import registry_strides

        names = [n for n in registered_names() if fnmatch.fnmatch(n, args.pattern)]
        if not names and parse_name(args.pattern) is not None:
            names = [args.pattern]  # a sized blurpool, e.g. vgg_cifar_blurpool5
        if not names:
            raise ValueError(f"no registered model matches {args.pattern!r}.")
        tables = [(n, registry_strides(n, args.width)) for n in names]
    for i, (name, rows) in enumerate(tables):
        print(("\n" if i else "") + name)
        width = max(len("layer"), *(len(r["layer"]) for r in rows))
        print(
            f"  {'layer':{width}s} {'channels':>8s} {'size':>5s} {'stride s':>8s} "
            f"{'s² copies':>9s}  source"
        )
        for r in rows:
            cells = [r["channels"], r["size"], r["stride"], r["shifted_copies"]]
            c, size, s, copies = ("-" if v is None else str(v) for v in cells)
            print(f"  {r['layer']:{width}s} {c:>8s} {size:>5s} {s:>8s} {copies:>9s}  {r['source']}")
        inferred = [r["layer"] for r in rows if r["source"] == "inferred"]
        if inferred:  # only measured tables: the registry's answer imports nothing heavy
            from defstab.cli.common import warn_inferred_strides

            warn_inferred_strides(inferred)
    print(
        "s: cumulative stride (input pixels per feature pixel). A shift of k px moves the "
        "feature map exactly only when s divides k; full invariance there needs all s² "
        "sub-stride shifted copies of every image in training (Azulay & Weiss 2019)."
    )


def _measured_strides(spec: str, image_size: int | None) -> list[dict]:
    from defstab.models.loading import build_model, native_input_size
    from defstab.models.strides import model_strides

    model = build_model(spec)
    size = image_size or native_input_size(model, spec) or 224
    if size < 8:
        raise ValueError(f"--image-size must be at least 8, got {size}.")
    return model_strides(model, size)
