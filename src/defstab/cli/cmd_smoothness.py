"""``defstab smoothness``: normalized total variation of every conv layer's filters."""

from __future__ import annotations

HELP = "filter smoothness (normalized TV) per conv layer"  # one line in `defstab --help`


def add_parser(sub):
    from defstab.cli.common import add_model_args

    p = sub.add_parser("smoothness", help=HELP)
    add_model_args(p)
    p.add_argument("--in-channels", type=int, default=None, help="registry models: 1 for MNIST")
    p.add_argument("--out", required=True, help="output folder")
    return p


def run(args) -> None:
    from defstab.cli.common import check_out_folder, final_out, resolve_model, weights_caveat
    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.io.tables import write_csv
    from defstab.metrics import filter_smoothness
    from defstab.plotting.sensitivity import plot_smoothness

    out = check_out_folder(args.out)
    model, settings = resolve_model(args, in_channels=args.in_channels)
    values = filter_smoothness(model)
    if not values:
        raise ValueError(f"{settings['model']} has no conv layer with 2-D filters to measure.")
    random_note = weights_caveat(settings)
    expected = expected_at_init(settings)
    rows = [
        {"layer": k, "smoothness": v, "weights": settings["weights"]} for k, v in values.items()
    ]
    write_csv(out / "smoothness.csv", rows)
    title = f"{settings['model']}: filter smoothness" + (" — RANDOM WEIGHTS" if random_note else "")
    plot_smoothness(values, out / "smoothness.png", title=title, reference=expected and expected[0])
    write_json(out / "config.json", {"command": "smoothness", **settings, "versions": versions()})
    write_json(
        out / "section.json",
        {
            "section": "smoothness",
            "title": f"Filter smoothness: {settings['model']}",
            "caveats": [random_note] if random_note else [],
            "text": [
                f"Weights: {settings['weights']}. Normalized total variation per conv layer "
                "(0 = spatially constant)."
                + (f" Expected at {expected[1]}: {expected[0]:.3f}." if expected else "")
            ],
            "figures": ["smoothness.png"],
            "table_file": "smoothness.csv",
        },
    )
    if random_note:
        print(random_note)
    width = max([len("layer"), *map(len, values)])  # aligned for any name length
    print(f"{'layer':{width}s} {'smoothness':>10s}")
    for k, v in values.items():
        print(f"{k:{width}s} {v:10.4f}")
    if expected:
        print(f"expected at {expected[1]} (3×3 filters): {expected[0]:.3f}")
    print(f"wrote {final_out(args)}/smoothness.csv, smoothness.png")


def expected_at_init(settings: dict) -> tuple[float, str] | None:
    """The analytic TV of random 3×3 filters, where the init is known: registry models
    with random weights and no smoothing (they use the paper's init). Other models
    (torchvision, timm, files) initialise in their own ways: no expectation is claimed."""
    from defstab.cli.common import RANDOM_WEIGHTS
    from defstab.metrics.smoothness import EXPECTED_AT_INIT
    from defstab.models.loading import model_family

    kwargs = settings.get("model_kwargs") or {}
    if (
        settings.get("weights") != RANDOM_WEIGHTS
        or model_family(settings["model"]) != "registry"
        or kwargs.get("smooth_sigma")
    ):
        return None
    return EXPECTED_AT_INIT[kwargs.get("init", "paper")]
