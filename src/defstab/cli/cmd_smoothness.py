"""``defstab smoothness``: normalized total variation of every conv layer's filters."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub):
    from defstab.cli.common import add_model_args

    p = sub.add_parser("smoothness", help="filter smoothness (normalized TV) per conv layer")
    add_model_args(p)
    p.add_argument("--in-channels", type=int, default=None, help="registry models: 1 for MNIST")
    p.add_argument("--out", required=True, help="output folder")
    return p


def run(args) -> None:
    from defstab.cli.common import resolve_model
    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.io.tables import write_csv
    from defstab.metrics import filter_smoothness
    from defstab.plotting.sensitivity import plot_smoothness

    model, settings = resolve_model(args, in_channels=args.in_channels)
    values = filter_smoothness(model)
    out = Path(args.out)
    write_csv(out / "smoothness.csv", [{"layer": k, "smoothness": v} for k, v in values.items()])
    plot_smoothness(values, out / "smoothness.png", title=f"{args.model}: filter smoothness")
    write_json(out / "config.json", {"command": "smoothness", **settings, "versions": versions()})
    for k, v in values.items():
        print(f"{k:32s} {v:.4f}")
    print(f"wrote {out}/smoothness.csv, smoothness.png")
