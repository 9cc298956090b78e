"""``defstab translate``: translation/scale stability of a classifier (Azulay & Weiss)."""

from __future__ import annotations


def add_parser(sub):
    from defstab.cli.common import add_data_args, add_model_args

    p = sub.add_parser("translate", help="P(top-1 change), MAC, jaggedness under 1-px shifts")
    add_model_args(p)
    add_data_args(p)
    p.add_argument("--images", type=int, default=64)
    p.add_argument(
        "--protocol", default="embed", help="comma-separated: embed, inpaint, crop, scale, subpixel"
    )
    p.add_argument("--steps", type=int, default=None, help="one-pixel steps (default: size/8)")
    p.add_argument(
        "--object-size",
        default=None,
        help="embed/inpaint/scale: object side in px, or a comma-separated sweep "
        "(default: half the canvas)",
    )
    p.add_argument(
        "--direction", default="horizontal", choices=["horizontal", "vertical", "diagonal"]
    )
    p.add_argument(
        "--layers",
        action="store_true",
        help="also the per-layer shift analysis (strides, invariance, equivariance)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    return p


def run(args) -> None:
    import torch

    from defstab.cli.common import (
        check_out_folder,
        check_positive,
        pick_device,
        resolve_model,
        warn,
        weights_caveat,
    )
    from defstab.data.normalize import default_normalization, make_normalize
    from defstab.data.sources import load_data
    from defstab.data.spec import DataSpec
    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.io.tables import write_csv
    from defstab.models.loading import model_family, native_input_size
    from defstab.plotting.translation import layer_shift_figure, measures_vs_size, path_figure
    from defstab.translate import PROTOCOLS, layer_shift_analysis, run_protocol

    out = check_out_folder(args.out)
    check_positive(args.images, "--images")
    protocols = [p.strip() for p in args.protocol.split(",") if p.strip()]
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad or not protocols:
        raise ValueError(
            f"unknown protocol {bad or args.protocol!r}; choose from {', '.join(PROTOCOLS)}."
        )
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {args.steps}.")
    try:
        sizes = [int(s) for s in args.object_size.split(",")] if args.object_size else None
    except ValueError:
        raise ValueError(
            f"--object-size takes pixel sizes like 56,112; got {args.object_size!r}."
        ) from None
    device = pick_device(args.device)
    data_spec = DataSpec.parse(args.data)
    data = load_data(data_spec, args.split, image_size=None)
    model, settings = resolve_model(args, in_channels=data.channels)
    model = model.to(device)
    model_name = settings["model"]
    canvas = args.image_size or native_input_size(model, model_name) or 32
    steps = args.steps or max(1, canvas // 8)
    crop = canvas - steps
    if crop < 2:
        raise ValueError(f"--steps {steps} leaves no crop of a {canvas} px canvas; use fewer.")
    if sizes and not all(1 <= s <= canvas for s in sizes):
        raise ValueError(f"--object-size must lie in 1…{canvas} px (the canvas), got {sizes}.")
    if data.paths is not None:
        data.image_size = canvas  # larger than crop by `steps`: room for the crop path
    gen = torch.Generator().manual_seed(args.seed)
    images, labels, ids = data.sample(args.images, gen)
    if images.shape[-1] != canvas:
        from defstab.translate.protocols import resize

        native = images.shape[-1]
        if canvas > 2 * native or native > 2 * canvas:
            warn(
                f"images of {native} px are resized ×{canvas / native:.2g} to the {canvas} px "
                "canvas; pass --image-size to choose it."
            )
        images = resize(images, canvas)
    elif data.paths is not None:
        from defstab.cli.cmd_measure import warn_if_resized

        warn_if_resized(data, canvas, warn)
    norm = (
        args.normalize
        or settings.get("normalize_trained")
        or default_normalization(model_family(model_name), data_spec)
    )
    pre = make_normalize(norm, images.shape[1])
    pre = pre.to(device) if pre is not None else None
    has_labels = len(data.classes) > 1
    sizes = sizes or [canvas // 2]
    random_note = weights_caveat(settings)
    mark = " — RANDOM WEIGHTS" if random_note else ""
    summary, per_step, figures = [], [], []
    for proto in protocols:
        for size in sizes if proto in ("embed", "inpaint", "scale") else [None]:
            res = run_protocol(
                model,
                images,
                labels if has_labels else None,
                proto,
                steps,
                pre,
                canvas=canvas,
                object_size=size,
                crop=crop,
                direction=args.direction,
                progress=not args.quiet,
            )
            summary.append(res.summary() | {"weights": settings["weights"]})
            per_step += [r | {"object_size": size} for r in res.per_step_rows(ids)]
            name = f"path_{proto}" + (f"_{size}" if size else "") + ".png"
            path_figure(
                res,
                out / name,
                f"{model_name}: {proto}" + (f", object {size} px" if size else "") + mark,
            )
            figures.append(name)
    write_csv(out / "summary.csv", summary)
    write_csv(out / "per_step.csv", per_step)
    if len(sizes) > 1:
        measures_vs_size(
            summary, out / "measures_vs_size.png", f"{model_name}: measures vs object size{mark}"
        )
        figures.append("measures_vs_size.png")
    if args.layers:
        rows = layer_shift_analysis(model, images, crop, steps, preprocess=pre)
        write_csv(out / "layers.csv", rows)
        layer_shift_figure(
            rows, out / "layers.png", f"{model_name}: shifts vs cumulative stride{mark}"
        )
        figures.append("layers.png")
    write_json(
        out / "config.json",
        {
            "command": "translate",
            **settings,
            "data": data_spec.record(),
            "images": args.images,
            "canvas": canvas,
            "steps": steps,
            "protocols": protocols,
            "object_sizes": sizes,
            "normalize": norm,
            "seed": args.seed,
            "versions": versions(),
        },
    )
    write_json(
        out / "section.json",
        {
            "section": "translate",
            "title": f"Translations: {model_name} on {data.name}",
            "caveats": [random_note] if random_note else [],
            "text": [
                f"Weights: {settings['weights']}. {args.images} images, canvas {canvas} px, "
                f"{steps} one-pixel steps ({args.direction}); protocols "
                f"{', '.join(protocols)}. Reference (Azulay & Weiss, ImageNet-pretrained): "
                "P(top-1 change) crop ≈ 0.06, black canvas ≈ 0.18–0.20."
            ],
            "figures": figures,
            "table": summary,
        },
    )
    if random_note:
        print(random_note)
    for row in summary:
        print(
            "  ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            )
        )
    print(f"wrote {out}/summary.csv, per_step.csv and figures")
