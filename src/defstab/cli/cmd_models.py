"""``defstab models``: list the registry with parameter counts and FLOPs per image."""

from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("models", help="list the registered networks")
    p.add_argument("pattern", nargs="?", default="*", help="shell pattern, e.g. 'vgg_cifar_*'")
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier (default 1.0)")
    return p


def run(args) -> None:
    from defstab.models import create_model, list_models
    from defstab.models.summary import count_flops, count_parameters

    names = list_models(args.pattern)
    if not names:
        raise ValueError(f"no registered model matches {args.pattern!r}.")
    print(f"{'model':28s} {'input':>11s} {'layers':>6s} {'params':>12s} {'GFLOPs/img':>11s}")
    for name in names:
        m = create_model(name, width=args.width)
        shape = (m.in_channels, m.input_size, m.input_size)
        flops = count_flops(m, shape)
        layers = len(m.representation_points) + 1
        print(
            f"{name:28s} {'x'.join(map(str, shape)):>11s} {layers:6d} "
            f"{count_parameters(m):12,d} {flops / 1e9:11.3f}"
        )
    sized = [n for n in names if n.endswith("blurpool")]
    if sized:
        print(
            "blurpool (3 taps) and maxblurpool (4 taps, Zhang 2019's default) take another "
            f"filter size 1…7 as a suffix, e.g. {sized[0]}5."
        )
