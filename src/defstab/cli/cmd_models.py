"""``defstab models``: list the registry with parameter counts and FLOPs per image."""

from __future__ import annotations

HELP = "list the registered networks"  # one line in `defstab --help`


def add_parser(sub):
    p = sub.add_parser("models", help=HELP)
    p.add_argument("pattern", nargs="?", default="*", help="shell pattern, e.g. 'vgg_cifar_*'")
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier (default 1.0)")
    return p


def run(args) -> None:
    import fnmatch

    # the architectures as data: no torch import, so the listing answers at once
    from defstab.models.architectures import describe, registered_names

    if not args.width > 0:
        raise ValueError(f"--width must be positive, got {args.width}.")
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
            f"filter size 1…7 as a suffix, e.g. {sized[0]}5."
        )
