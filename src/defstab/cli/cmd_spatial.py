"""``defstab spatial``: accuracy under rotations and translations (Engstrom et al. 2019):
natural, random, worst of 10 and the exhaustive 775-transform grid."""

from __future__ import annotations

HELP = "accuracy under random, worst-of-10 and grid rotations + translations (Engstrom)"


def add_parser(sub):
    from defstab.cli.common import add_data_args, add_model_args

    p = sub.add_parser("spatial", help=HELP)
    add_model_args(p, scores=True)
    add_data_args(p)
    p.add_argument("--images", type=int, default=64)
    p.add_argument(
        "--preset",
        default=None,
        choices=["engstrom-cifar", "engstrom-imagenet"],
        help="engstrom-cifar (±30°, ±3 px, 16-px zero padding, rotate then translate; their "
        "TensorFlow code) or engstrom-imagenet (±30°, ±3/28 of the side: 24 px at 224, one "
        "resampling; their PyTorch code); default: cifar up to 64 px, imagenet above",
    )
    p.add_argument("--seed", type=int, default=0, help="images drawn and random transforms")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    return p


def run(args) -> None:
    import torch

    from defstab.cli.common import (
        check_out_folder,
        check_scores_cover,
        final_out,
        pick_device,
        pick_normalization,
        resolve_model,
        use_class_scores,
        weights_caveat,
    )
    from defstab.data.sources import load_data
    from defstab.data.spec import DataSpec
    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.io.tables import write_csv
    from defstab.models.loading import native_input_size
    from defstab.translate.spatial import get_spatial_preset, spatial_accuracy

    out = check_out_folder(args.out)
    device = pick_device(args.device)
    data_spec = DataSpec.parse(args.data)
    data = load_data(data_spec, args.split, image_size=args.image_size)
    if len(data.classes) < 2:
        raise ValueError("spatial measures accuracy; the data must be a classification set.")
    model, settings = resolve_model(args, in_channels=data.channels)
    model = model.to(device).eval()
    size = args.image_size or native_input_size(model, settings["model"])
    if data.paths is not None and data.image_size is None:
        data.image_size = size
    gen = torch.Generator().manual_seed(args.seed)
    ids = data.draw(args.images, gen)
    images, labels = data.images(ids), data.labels[ids]
    side = images.shape[-1]
    if images.shape[-2] != side:
        raise ValueError(
            f"spatial transforms take square images; these are {side}×{images.shape[-2]} px "
            "(W×H): give them as folder:PATH (resized and centre-cropped)."
        )
    preset = get_spatial_preset(args.preset or ("engstrom-cifar" if side <= 64 else
                                                "engstrom-imagenet"))  # fmt: skip
    norm, pre = pick_normalization(args.normalize, settings, data_spec, images.shape[1], device)
    probe = images[:2].to(device)
    scores = use_class_scores(model, pre(probe) if pre is not None else probe, args, settings)
    check_scores_cover(scores, data, settings["model"])
    found = spatial_accuracy(model, images, labels, preset, gen, pre)
    caveat = weights_caveat(settings)
    row = {
        "preset": preset.name,
        "images": len(ids),
        "natural": found["natural"],
        "random": found["random"],
        f"worst_of_{preset.tries}": found["worst_of_k"],
        "grid": found["grid"],
        "transforms": found["transforms"],
        "weights": settings["weights"],
    }
    write_csv(out / "summary.csv", [row])
    write_csv(
        out / "per_image.csv",
        [
            {
                "image": int(ids[i]),
                "label": int(labels[i]),
                "natural": int(found["correct_natural"][i]),
                "random": int(found["correct_random"][i]),
                "worst_of_k": int(found["correct_worst_of_k"][i]),
                "grid": int(found["correct_grid"][i]),
                "worst_angle": float(found["worst"][i, 0]),
                "worst_dx": float(found["worst"][i, 1]),
                "worst_dy": float(found["worst"][i, 2]),
            }
            for i in range(len(ids))
        ],
    )
    write_json(
        out / "config.json",
        {"command": "spatial", **settings, "data": data_spec.record(), "images": args.images,
         "image_size": side, "normalize": norm, "preset": preset.record(), "seed": args.seed,
         "versions": versions()},
    )  # fmt: skip
    write_json(
        out / "section.json",
        {
            "section": "spatial",
            "title": f"Rotations and translations: {settings['model']} on {data.name}",
            "caveats": [caveat] if caveat else [],
            "text": [
                f"Weights: {settings['weights']}. {len(ids)} images; preset {preset.name}: "
                f"rotations within ±{preset.rotation:g}°, translations within "
                f"±{preset.max_shift(side):g} px; worst of {preset.tries} random draws (by "
                f"cross-entropy) and of the {found['transforms']}-transform grid "
                "(Engstrom et al. 2019).",
            ],
            "figures": [],
            "table_file": "summary.csv",
        },
    )
    if caveat:
        print(caveat)
    print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    print(f"wrote {final_out(args)}/: summary.csv, per_image.csv, config.json, section.json")
