"""``defstab translate``: translation/scale stability of a classifier (Azulay & Weiss)."""

from __future__ import annotations

HELP = "P(top-1 change), MAC, jaggedness under 1-px shifts"  # one line in `defstab --help`


def add_parser(sub):
    from defstab.cli.common import add_data_args, add_model_args, add_read_workers

    p = sub.add_parser("translate", help=HELP)
    add_model_args(p, scores=True)
    add_data_args(p)
    p.add_argument("--images", type=int, default=64)
    add_read_workers(p)
    p.add_argument(
        "--preset",
        default="defstab",
        choices=["defstab", "azulay", "zhang", "aps", "aps-cifar", "michaeli"],
        help="the geometry a paper used: azulay (224-px crops of 234-px images and a 224-px "
        "mean-colour canvas, 8 diagonal steps, objects 172/140/117 px), zhang (two random "
        "offsets in a 32×32 window, 224-px crops of 256-px images), aps / aps-cifar (two "
        "random circular shifts in [−32, 31] px of 224-px crops, or [−3, 2] px of 32-px "
        "images), michaeli (accuracy under the worst integer, half-pixel and fractional "
        "circular shift), or defstab's default (one centred horizontal path on the model's "
        "canvas); options below override it",
    )
    p.add_argument(
        "--protocol",
        default=None,
        help="comma-separated: embed, inpaint, crop, scale, subpixel, pad-shift (the whole "
        "image moved −STEPS…+STEPS px, zero fill: training augmentation's shift), "
        "random-pairs, circular (rolled 0…STEPS px, wrapping), fractional (shifted by "
        "k/FRACTION px, band-limited), circular-pairs (two random circular shifts) "
        "(default: the preset's)",
    )
    p.add_argument(
        "--fraction",
        type=int,
        default=None,
        metavar="M",
        help="fractional: steps of 1/M px (default 2: half a pixel)",
    )
    p.add_argument(
        "--steps", type=int, default=None, help="one-pixel steps (defstab default: canvas/8)"
    )
    p.add_argument(
        "--object-size",
        default=None,
        help="embed/inpaint/scale: object side in px, or a comma-separated sweep "
        "(defstab default: half the canvas)",
    )
    p.add_argument("--direction", default=None, choices=["horizontal", "vertical", "diagonal"])
    p.add_argument(
        "--background",
        default=None,
        choices=["black", "mean"],
        help="embed canvas: black pixels, or the normalisation mean (zeros after "
        "normalisation, as Azulay & Weiss's code pastes)",
    )
    p.add_argument("--crop-size", type=int, default=None, help="crop/random-pairs: crop side")
    p.add_argument(
        "--source-size",
        type=int,
        default=None,
        help="side the images are resized to before cropping (default: the canvas)",
    )
    p.add_argument(
        "--window", type=int, default=None, help="random-pairs: offsets 0…window−1 (Zhang: 32)"
    )
    p.add_argument(
        "--pairs-per-batch",
        type=int,
        default=None,
        help="random-pairs: one pair of offsets per this many images, as Zhang's code draws "
        "per batch (default: one pair per image)",
    )
    p.add_argument(
        "--worst-shift",
        type=int,
        default=None,
        metavar="K",
        help="also every integer shift within ±K px (exhaustive): the fraction of images "
        "that some shift flips, beside the average per shift",
    )
    p.add_argument(
        "--robust-grid",
        default=None,
        metavar="GRIDS",
        help="accuracy under the worst shift (Michaeli et al. 2023): comma-separated grids "
        "integer (rolls 1…R−1 on both axes), half (those minus ½ px), fraction (k/u px, u up "
        "to --robust-up), full (integer and half); 'none' for none",
    )
    p.add_argument(
        "--robust-geometry",
        default=None,
        choices=["circular", "crop"],
        help="worst shift: the whole image wrapped around (default), or a canvas-px crop "
        "moved within ±R px of a larger image",
    )
    p.add_argument(
        "--robust-radius",
        type=int,
        default=None,
        metavar="R",
        help="worst shift: the grids' R (default 32, the authors'; at most the image size)",
    )
    p.add_argument(
        "--robust-up", type=int, default=None, metavar="U",
        help="worst shift: the fraction grid's largest denominator (default 4: 1/3 and 1/4 px)",
    )  # fmt: skip
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
        check_scores_cover,
        final_out,
        pick_device,
        pick_normalization,
        report_skipped,
        resolve_model,
        use_class_scores,
        warn,
        warn_inferred_strides,
        weights_caveat,
    )
    from defstab.data.sources import load_data
    from defstab.data.spec import DataSpec
    from defstab.data.stream import DatasetImages, MappedImages
    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.io.tables import write_csv
    from defstab.models.loading import native_input_size
    from defstab.plotting.translation import layer_shift_figure, measures_vs_size, path_figure
    from defstab.translate import PROTOCOLS, layer_shift_analysis, run_protocol
    from defstab.translate.analysis import PATH_PROTOCOLS
    from defstab.translate.presets import describe, get_preset, reference_note
    from defstab.translate.protocols import resize

    out = check_out_folder(args.out)
    try:
        sizes = [int(s) for s in args.object_size.split(",")] if args.object_size else None
    except ValueError:
        raise ValueError(
            f"--object-size takes pixel sizes like 56,112; got {args.object_size!r}."
        ) from None
    overrides = {
        "direction": args.direction,
        "steps": args.steps,
        "canvas": args.image_size,
        "source_size": args.source_size,
        "crop": args.crop_size,
        "object_sizes": sizes,
        "background": args.background,
        "window": args.window,
        "pairs_per_batch": args.pairs_per_batch,
        "fraction": args.fraction,
        "robust_grids": robust_grids(args.robust_grid),
        "robust_geometry": args.robust_geometry,
        "robust_radius": args.robust_radius,
        "robust_up": args.robust_up,
    }
    given = sorted(k for k, v in overrides.items() if v is not None)
    preset = get_preset(args.preset).with_overrides(**overrides)
    protocols = (
        [p.strip() for p in args.protocol.split(",") if p.strip()]
        if args.protocol is not None
        else list(preset.protocols)
    )
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad or not (protocols or preset.robust_grids):
        raise ValueError(
            f"unknown protocol {bad or args.protocol!r}; choose from {', '.join(PROTOCOLS)}."
        )
    device = pick_device(args.device)
    data_spec = DataSpec.parse(args.data)
    data = load_data(data_spec, args.split, image_size=None)
    model, settings = resolve_model(args, in_channels=data.channels)
    model = model.to(device)
    model_name = settings["model"]
    native = native_input_size(model, model_name)
    preset = preset.resolved(native or 32)
    canvas, steps, crop, source = preset.canvas, preset.steps, preset.crop, preset.source_size
    if args.preset != "defstab":
        if given:
            warn(
                f"{', '.join(given)} given: the geometry is no longer the {args.preset} "
                "preset's, so the results are not comparable with the paper's tables."
            )
        if native is not None and native != canvas:
            warn(
                f"the {args.preset} preset is defined for {canvas}-px inputs; "
                f"{model_name} takes {native} px."
            )
    if crop < 2:
        raise ValueError(f"--steps {steps} leaves no crop of a {source} px image; use fewer.")
    if crop > source:
        raise ValueError(
            f"crops of {crop} px do not fit images of {source} px; choose --crop-size or "
            "fewer --steps."
        )
    if not all(2 <= s <= canvas for s in preset.object_sizes):
        raise ValueError(
            f"--object-size must lie in 2…{canvas} px (the canvas), got "
            f"{list(preset.object_sizes)}."
        )
    if data.paths is not None:
        data.image_size = source  # crops come from images of this size
    gen = torch.Generator().manual_seed(args.seed)
    # read chunk by chunk as the protocols run: a whole data set is never in memory
    # (`sample` would draw the same indices from the generator)
    ids = data.draw(args.images, gen)
    labels = data.labels[ids]
    images = DatasetImages(data, ids, workers=args.read_workers)
    channels, height, width = images.image_shape
    if width != height:  # resizing would stretch them: never silently
        raise ValueError(
            f"translate moves square crops and canvases, and these images are "
            f"{width}×{height} px (W×H); crop them to squares first, or "
            "give them as a folder:PATH (resized and centre-cropped, as --image-size says)."
        )
    if width != source:
        native_px = width
        if source > 2 * native_px or native_px > 2 * source:
            warn(
                f"images of {native_px} px are resized ×{source / native_px:.2g} to "
                f"{source} px; pass --source-size (or --image-size) to choose it."
            )
        images = MappedImages(images, lambda x: resize(x, source), (channels, source, source))
    elif data.paths is not None:
        from defstab.pipeline.measure_outputs import warn_if_resized

        warn_if_resized(data, source, warn)
    norm, pre = pick_normalization(args.normalize, settings, data_spec, channels, device)
    _, first = next(images.batches(None, 2))
    probe = resize(first, canvas).to(device)  # shaped like every frame to come
    scores = use_class_scores(model, pre(probe) if pre is not None else probe, args, settings)
    has_labels = len(data.classes) > 1
    if has_labels:  # the true class's probability and correctness read its score
        check_scores_cover(scores, data, model_name)
    random_note = weights_caveat(settings)
    mark = " — RANDOM WEIGHTS" if random_note else ""
    summary, per_step, figures, robust_rows = [], [], [], []
    for proto in protocols:
        sized = proto in ("embed", "inpaint", "scale")
        for size in preset.object_sizes if sized else [None]:
            geometry = preset.geometry(proto, size)
            res = run_protocol(
                model,
                images,
                labels if has_labels else None,
                proto,
                steps,
                pre,
                progress=not args.quiet,
                generator=gen,
                **geometry,
            )
            extra = {"background": geometry["background"]} if "background" in geometry else {}
            summary.append(
                {"preset": args.preset} | res.summary() | extra | {"weights": settings["weights"]}
            )
            per_step.append((res, {"object_size": size}))  # (N, S) numbers, written below
            name = f"path_{proto}" + (f"_{size}" if size else "") + ".png"
            if proto in PATH_PROTOCOLS:
                path_figure(
                    res,
                    out / name,
                    f"{model_name}: {proto}" + (f", object {size} px" if size else "") + mark,
                )
                figures.append(name)
    for grid in preset.robust_grids:
        found = _worst_shift_accuracy(model, images, labels, grid, preset, pre, args, has_labels)
        summary.append({"preset": args.preset} | found["row"] | {"weights": settings["weights"]})
        robust_rows += found["per_image"]
    if robust_rows:
        for row in robust_rows:
            row["image"] = int(ids[row["image"]])
        write_csv(out / "worst_shift_accuracy.csv", robust_rows)
    if args.worst_shift is not None:
        from defstab.translate.analysis import worst_shift

        side = min(crop, source - 2 * args.worst_shift)
        found = worst_shift(model, images, side, args.worst_shift, pre, progress=not args.quiet)
        summary.append(
            {"preset": args.preset}
            | {k: v for k, v in found.items() if k not in ("flipped", "worst", "items")}
            | {"weights": settings["weights"]}
        )
        write_csv(
            out / "worst_shift.csv",
            [
                {
                    "image": int(ids[item]),
                    "flipped": int(found["flipped"][i]),
                    "worst_dx": int(found["worst"][i, 0]),
                    "worst_dy": int(found["worst"][i, 1]),
                }
                for i, item in enumerate(found["items"].tolist())
            ],
        )
    write_csv(out / "summary.csv", summary)
    if per_step:
        _write_per_step(out / "per_step.csv", per_step, ids)
    skipped = report_skipped(
        images.skipped, ids, out, args.images - len(images.skipped), final_out(args)
    )
    if len(preset.object_sizes) > 1 and any(p in ("embed", "inpaint", "scale") for p in protocols):
        measures_vs_size(
            summary, out / "measures_vs_size.png", f"{model_name}: measures vs object size{mark}"
        )
        figures.append("measures_vs_size.png")
    if args.layers:
        # a representation analysis with its own exact median: its images in memory
        held = torch.cat([x for _, x in images.batches(None, 256)])
        rows = layer_shift_analysis(model, held, crop, steps, preprocess=pre)
        warn_inferred_strides(r["layer"] for r in rows if r["stride_source"] == "inferred")
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
            "preset": args.preset,
            "protocol": preset.record()
            | {
                "protocols": protocols,
                "overridden": given,
                "description": describe(preset, protocols),
            },
            "canvas": canvas,
            "steps": steps,
            "protocols": protocols,
            "object_sizes": list(preset.object_sizes),
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
                f"Weights: {settings['weights']}. {args.images} images; preset "
                f"{args.preset} ({preset.paper}): {describe(preset, protocols)}.",
                reference_note(args.preset, given),
                *consistency_lines(summary),
            ],
            "figures": figures,
            "table_file": "summary.csv",
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
    written = ["summary.csv"] + (["per_step.csv"] if per_step else [])
    written += ["skipped.csv"] if skipped else []
    written += ["worst_shift_accuracy.csv"] if robust_rows else []
    written += ["worst_shift.csv"] if args.worst_shift is not None else []
    written += ["layers.csv"] if args.layers else []
    files = [*written, *figures, "config.json", "section.json"]
    print(f"wrote {final_out(args)}/: {', '.join(files)}")


def consistency_lines(summary: list[dict]) -> list[str]:
    """One sentence per protocol row with labels: consistency over images whose first
    frame is right and over those it is wrong, beside accuracy (a network that is always
    right is consistent whatever shifts do to it)."""
    lines = []
    for row in summary:
        if "consistency_correct" not in row:
            continue
        right = (
            f"{row['consistency_correct']:.3f} over the {row['images_correct']} whose first "
            "frame is classified correctly"
            if row["images_correct"]
            else "no image's first frame is classified correctly"
        )
        wrong = (
            f"{row['consistency_incorrect']:.3f} over the {row['images_incorrect']} misclassified"
            if row["images_incorrect"]
            else "none is misclassified"
        )
        lines.append(
            f"{row['protocol']}: consistency {row['consistency']:.3f} over all images; "
            f"{right}, {wrong} (first-frame accuracy {row['first_frame_accuracy']:.3f})."
        )
    return lines


def robust_grids(text):
    """``--robust-grid``: None (the preset's), () for 'none', else the grids named."""
    if text is None:
        return None
    grids = [g.strip() for g in text.split(",") if g.strip()]
    if grids == ["none"]:
        return ()
    known = ("integer", "half", "fraction", "full")
    bad = [g for g in grids if g not in known]
    if bad or not grids:
        raise ValueError(
            f"--robust-grid takes {', '.join(known)} (comma-separated) or none; got {text!r}."
        )
    return tuple(grids)


def _worst_shift_accuracy(model, images, labels, grid, preset, pre, args, has_labels) -> dict:
    """One grid of the accuracy under the worst shift: its summary row and per-image rows
    (``image`` holds positions in ``ids``)."""
    from defstab.data.stream import MappedImages
    from defstab.translate.protocols import centre_crop
    from defstab.translate.robust import shift_robust_accuracy

    if not has_labels:
        raise ValueError("the accuracy under the worst shift needs labelled images.")
    geometry, radius, canvas = preset.robust_geometry, preset.robust_radius, preset.canvas
    side = canvas if geometry == "circular" else canvas + 2 * radius
    if side > preset.source_size:
        raise ValueError(
            f"crops of {canvas} px shifted by up to ±{radius} px need images of "
            f"{side} px; pass --source-size {side} or a smaller --robust-radius."
        )
    channels = images.image_shape[0]
    cropped = MappedImages(images, lambda x: centre_crop(x, side), (channels, side, side))
    found = shift_robust_accuracy(
        model, cropped, labels, grid, geometry=geometry, radius=radius,
        max_up=preset.robust_up, crop=canvas if geometry == "crop" else None,
        preprocess=pre, progress=not args.quiet,
    )  # fmt: skip
    row = {"protocol": f"worst-{grid}-shift"} | {
        k: found[k]
        for k in (
            "geometry",
            "radius",
            "max_up",
            "shifts",
            "images",
            "accuracy",
            "robust_accuracy",
        )  # fmt: skip
    }
    per_image = []
    for i, item in enumerate(found["items"].tolist()):
        dx, dy = found["first_failure"][i].tolist()
        per_image.append({
            "image": item, "grid": grid, "geometry": geometry,
            "correct": int(found["correct"][i]), "robust": int(found["robust"][i]),
            "first_failure_dx": "" if dx != dx else dx, "first_failure_dy": "" if dy != dy else dy,
        })  # fmt: skip
    return {"row": row, "per_image": per_image}


def _write_per_step(path, results, ids) -> None:
    """per_step.csv from every protocol's (N, S) steps, streamed row by row (a
    50,000-image run has millions of rows; they are never all Python objects at once)."""
    import itertools

    from defstab.io.tables import write_csv_rows

    rows = itertools.chain.from_iterable(res.iter_per_step(ids, extra) for res, extra in results)
    first = next(rows)
    columns = list(first)
    write_csv_rows(path, columns, ([r[c] for c in columns] for r in itertools.chain([first], rows)))
