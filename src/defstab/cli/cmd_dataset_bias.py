"""``defstab dataset-bias``: where a data set's objects are and how large (Azulay & Weiss's
photographer's bias), beside the same boxes placed uniformly."""

from __future__ import annotations

HELP = "object position and size statistics from VOC/ILSVRC XML or COCO JSON boxes"

#: statistics printed (all of them go to summary.csv)
SHOWN = [
    ("boxes", "boxes"),
    ("images", "images"),
    ("centre_x_mean", "centre x, mean"),
    ("centre_x_std", "centre x, std"),
    ("centre_y_mean", "centre y, mean"),
    ("centre_y_std", "centre y, std"),
    ("centre_distance_mean", "distance from the image centre, mean"),
    ("central_quarter_fraction", "centres in the central quarter"),
    ("size_median", "size (area fraction), median"),
    ("size_q10", "size, 10% quantile"),
    ("size_q90", "size, 90% quantile"),
]


def add_parser(sub):
    p = sub.add_parser("dataset-bias", help=HELP)
    p.add_argument(
        "--data",
        required=True,
        help="voc:DIR or ilsvrc:DIR (XML annotations, searched recursively) or "
        "coco:FILE.json (instances); without a prefix a .json file is COCO",
    )
    p.add_argument("--bins", type=int, default=20, help="histogram cells per axis (default 20)")
    p.add_argument("--seed", type=int, default=0, help="the uniform placement's draw")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true")
    return p


def run(args) -> None:
    from defstab.cli.common import check_out_folder, final_out, warn
    from defstab.data.boxes import degenerate, read_boxes, statistics, subset, uniform_placement
    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.io.tables import write_csv
    from defstab.plotting.dataset_bias import bias_figure

    if not 2 <= args.bins <= 1000:
        raise ValueError(f"--bins must lie in 2…1000, got {args.bins}.")
    out = check_out_folder(args.out)
    boxes = read_boxes(args.data)
    empty = degenerate(boxes)
    if empty.all():
        raise ValueError(f"every box in {args.data} has zero area inside its image.")
    if empty.any():
        warn(
            f"{int(empty.sum())} of {len(boxes)} boxes have zero area inside their image; skipped."
        )
        boxes = subset(boxes, ~empty)
    uniform = uniform_placement(boxes, args.seed)
    stats = {"data": statistics(boxes), "uniform placement": statistics(uniform)}
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "boxes.csv", boxes.rows())
    summary = [
        {"statistic": key, "data": stats["data"][key], "uniform": stats["uniform placement"][key]}
        for key in stats["data"]
    ]
    write_csv(out / "summary.csv", summary)
    title = f"Object position and size: {boxes.source} ({len(boxes)} boxes)"
    bias_figure(boxes, uniform, out / "dataset_bias.png", title, bins=args.bins)
    note = (
        "Centres as fractions of the image width/height; size = box area / image area. "
        "'Uniform placement': every box kept at its size in its image, its position drawn "
        f"uniformly among those inside the image (seed {args.seed}) — the same sizes, no "
        "photographer's bias. Uniform points would put 1/4 of the centres in the central "
        "quarter (the centred square of half the side); boxes that must stay inside the image "
        "cannot centre near its edges, so the uniform column, not 1/4, is the contrast."
    )
    write_json(
        out / "config.json",
        {
            "command": "dataset-bias",
            "data": args.data,
            "boxes": len(boxes),
            "skipped_zero_area": int(empty.sum()),
            "bins": args.bins,
            "seed": args.seed,
            "versions": versions(),
        },
    )
    write_json(
        out / "section.json",
        {
            "section": "dataset-bias",
            "title": f"Data set bias: {boxes.source}",
            "caveats": [],
            "text": [note],
            "figures": ["dataset_bias.png"],
            "table": [
                {
                    "statistic": label,
                    "data": round(stats["data"][k], 4),
                    "uniform": round(stats["uniform placement"][k], 4),
                }  # fmt: skip
                for k, label in SHOWN
            ],
        },
    )
    if not args.quiet:
        width = max(len(label) for _, label in SHOWN)
        print(f"{'':{width}s} {'data':>10s} {'uniform':>10s}")
        for key, label in SHOWN:
            a, b = stats["data"][key], stats["uniform placement"][key]
            fmt = "10d" if key in ("boxes", "images") else "10.3f"
            print(f"{label:{width}s} {a:{fmt}} {b:{fmt}}")
        print(f"wrote {final_out(args)}/summary.csv, boxes.csv, dataset_bias.png")
