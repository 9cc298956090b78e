"""``defstab measure``: layer-wise sensitivity of a model to random deformations."""

from __future__ import annotations

import math

#: one line in `defstab --help`
HELP = "sensitivity of every layer to random TPS deformations or diffeomorphisms"


def add_parser(sub):
    from defstab.cli.common import add_data_args, add_model_args, add_read_workers

    p = sub.add_parser("measure", help=HELP)
    add_model_args(p, scores=True)
    add_data_args(p)
    p.add_argument(
        "--layers",
        default=None,
        help="comma-separated module names (default: the paper's layers; else every conv "
        "and pooling module outside transformer blocks, and every transformer block)",
    )
    p.add_argument(
        "--tokens",
        default="all",
        choices=["all", "patches"],
        help="token outputs (N, T, D) of ViT blocks: compare the whole vector, class token "
        "included (all, default), or the patch tokens only (patches)",
    )
    p.add_argument(
        "--images",
        type=int,
        default=128,
        help="number of images (default 128; e.g. 10000: the whole CIFAR-10 test set)",
    )
    p.add_argument(
        "--normalizer",
        default="auto",
        choices=["auto", "exact", "sampled"],
        help="the per-layer median over pairs of undeformed images: exact (all pairs; time "
        "N², memory N × layers), sampled (the N/2 disjoint pairs of a seeded random order, "
        "with a 95%% interval; linear time, flat memory), or auto (default: exact up to "
        "4096 images)",
    )
    add_read_workers(p)
    p.add_argument(
        "--deformation",
        default="tps",
        choices=["tps", "diffeo"],
        help="tps: Ruderman's random thin-plate splines (--grid, --max-disp); diffeo: Petrini "
        "et al.'s random diffeomorphisms (--temperature or --displacement, --cut)",
    )
    p.add_argument("--grid", type=int, default=None, help="k (default 3 for ≤64 px, else 5)")
    p.add_argument("--max-disp", type=float, default=None, help="C (default 2 for ≤64 px, else 10)")
    p.add_argument("--temperature", type=float, default=None, help="diffeo: T")
    p.add_argument(
        "--displacement",
        type=float,
        default=None,
        metavar="PX",
        help="diffeo: choose T so that the typical displacement is PX pixels (default 1, "
        "Petrini et al.'s per-layer setting)",
    )
    p.add_argument("--cut", type=int, default=None, help="diffeo: the cut-off c of the sine "
                   "modes (default 3)")  # fmt: skip
    p.add_argument(
        "--aggregate",
        default="mean",
        choices=["mean", "median"],
        help="R_f over images: mean (Petrini et al.'s paper, always written) or median "
        "(also relative_stability_median: their results code's Σ_features median over "
        "images; keeps N × features squared differences in memory)",
    )
    p.add_argument(
        "--lie-derivative",
        metavar="TRANSFORMS",
        default=None,
        help="also the Lie derivative of every measured layer (Gruver et al. 2023) under "
        "translate (x and y), translate_x, translate_y, rotate, scale, comma-separated: "
        "lie_* columns in sensitivity.csv, lie.csv (end to end), lie_layers.csv (per module), "
        "lie.png",
    )
    p.add_argument(
        "--lie-images",
        type=int,
        default=None,
        metavar="K",
        help="the Lie derivative on the first K of the measured images (default: all)",
    )
    p.add_argument(
        "--no-lie-contributions",
        action="store_true",
        help="skip each module's contribution (one forward pass per module and transform)",
    )
    p.add_argument(
        "--lie-derivative-convention",
        default="symmetric",
        choices=["symmetric", "gruver"],
        help="the derivative of the bilinear warp at t = 0: symmetric (central differences, "
        "default) or gruver (their code's one-sided derivative through floor: compare with "
        "Gruver et al.'s tables; 19–50%% apart end to end)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of image order, deformations, noise")
    p.add_argument("--distance", default="cosine", choices=["cosine", "euclidean"])
    p.add_argument("--no-noise", action="store_true", help="skip the noise control")
    p.add_argument(
        "--deformations",
        metavar="FILE",
        default=None,
        help="replay the deformations.pt of an earlier measure (same data, --images and "
        "--seed: the file records its images, and another set is refused)",
    )
    p.add_argument(
        "--force-replay",
        action="store_true",
        help="with --deformations: deform these images even if the file was drawn for others",
    )
    p.add_argument(
        "--worst-case",
        action="store_true",
        help="also the worst TPS deformation of the same budget per image (projected "
        "gradient ascent): worst_mean/worst_std columns, worst_deformations.pt, worst_case.png",
    )
    p.add_argument("--attack-steps", type=int, default=10, help="gradient steps (default 10)")
    p.add_argument("--attack-restarts", type=int, default=0, help="extra random starts")
    p.add_argument(
        "--attack-layer",
        default=None,
        help="layer whose distance the attack maximises (default: the last measured layer)",
    )
    p.add_argument(
        "--attack-objective",
        default="distance",
        choices=["distance", "loss"],
        help="distance at --attack-layer, or cross-entropy on the predicted class",
    )
    p.add_argument(
        "--min-flip",
        action="store_true",
        help="classifiers: per image the smallest C whose worst-case deformation changes the "
        "top-1 class (bisection): flip.csv, robustness.png",
    )
    p.add_argument(
        "--flip-max", type=float, default=None, help="--min-flip search up to C (default 2×C)"
    )
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument(
        "--ram-budget",
        type=float,
        default=3.0,
        metavar="GIB",
        help="RAM for the undeformed representations the exact median needs (default 3 GiB); "
        "the rest goes to a temporary file in TMPDIR",
    )
    from defstab.cli.cmd_experiment import add_scaling_args

    g = add_scaling_args(p, training=False, unit="shard")
    g.add_argument(
        "--shards",
        type=int,
        default=1,
        help="split the images over N shards (OUT/shards/), run the missing ones, merge them; "
        "rerun the same command to resume (default 1: no shards)",
    )
    g.add_argument(
        "--shard",
        metavar="I/N",
        default=None,
        help="measure only shard I of N and write OUT/shards/shard-I-of-N.pt (e.g. one task of "
        "a Slurm array); a later run with --shards N merges",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true")
    return p


def run(args) -> None:
    import torch

    from defstab.cli.common import (
        check_out_folder,
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
    from defstab.cli.measure_shards import (
        load_shards,
        parse_shard,
        run_missing,
        settings_of,
        shard_file,
    )
    from defstab.data.sources import load_data
    from defstab.data.spec import DataSpec
    from defstab.data.stream import DatasetImages
    from defstab.deform import DeformationSpec
    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.io.replay import save_replay
    from defstab.measure import measure_sensitivity
    from defstab.measure.normalizers import resolve_normalizer
    from defstab.measure.shards import merge_shards
    from defstab.models.loading import native_input_size
    from defstab.plotting.sensitivity import plot_sensitivity

    # checks first: nothing is read, computed or written before the arguments hold
    out = check_out_folder(args.out)
    resume = final_out(args)  # shards are resume files: outside the result's staging
    if args.images < 2:
        raise ValueError(f"--images must be at least 2, got {args.images}.")
    normalizer = resolve_normalizer(args.normalizer, args.images)
    shard = parse_shard(args.shard) if args.shard is not None else None
    if shard is not None and args.shards not in (1, shard[1]):
        raise ValueError(f"--shard {args.shard} and --shards {args.shards} disagree; give one.")
    shards = shard[1] if shard is not None else args.shards
    lie_transforms = check_lie_options(args, shard)
    if args.aggregate == "median" and (shards > 1 or args.no_noise):
        raise ValueError(
            "--aggregate median needs every image in one process and the noise control; "
            "drop --shards/--shard/--no-noise."
        )
    if shards > 1:
        if args.normalizer == "exact":
            raise ValueError(
                "--shards needs the sampled normalizer (the exact median needs every image in "
                "one process); drop --normalizer exact."
            )
        normalizer = resolve_normalizer("sampled", args.images)
        if shards > args.images // 2:
            raise ValueError(
                f"--shards {shards} is more than the {args.images // 2} pairs of "
                f"{args.images} images; use fewer shards."
            )
        if args.min_flip:
            raise ValueError("--min-flip is not sharded; run it without --shards.")
        check_shard_chunks(shards, args.images, args.batch_size)
    replay = _read_deformations(args.deformations) if args.deformations else None
    if args.force_replay and replay is None:
        raise ValueError("--force-replay goes with --deformations FILE; give the file.")
    if replay is not None and any(
        v is not None
        for v in (
            args.grid,
            args.max_disp,
            args.temperature,
            args.displacement,
            args.cut,
        )  # fmt: skip
    ):
        raise ValueError(
            "--deformations replays saved deformations; drop --grid/--max-disp/--temperature/"
            "--displacement/--cut."
        )
    check_deformation_options(args)
    device = pick_device(args.device)
    data_spec = DataSpec.parse(args.data)
    data_probe = load_data(data_spec, args.split, image_size=args.image_size)
    model, model_settings = resolve_model(args, in_channels=data_probe.channels)
    size = args.image_size or native_input_size(model, model_settings["model"])
    if data_probe.paths is not None and data_probe.image_size is None:
        data_probe.image_size = size
    gen = torch.Generator().manual_seed(args.seed)
    # the images are read chunk by chunk while measured (a whole data set never is in
    # memory at once); `sample` would draw the same indices from the generator
    indices = data_probe.draw(args.images, gen)
    labels = data_probe.labels[indices]
    source = DatasetImages(data_probe, indices, workers=args.read_workers)
    warn_if_resized(data_probe, size, warn)
    h = source.image_shape[-1]
    drawn_for = {  # what the deformations are drawn for, recorded beside them
        "data": _data_identity(data_spec),
        "images": [int(i) for i in indices],
        "image_size": [int(source.image_shape[-2]), int(h)],
        "seed": args.seed,
    }
    if replay is not None:
        from defstab.io.replay import check_replay

        deformation = replay.params
        saved = (replay.record or {}).get("deformation") or {}
        holds = "diffeo" if saved.get("kind") == "diffeo" else "tps"  # TPS: "random_tps"
        if "deformation" in getattr(args, "_given", {}) and args.deformation != holds:
            raise ValueError(
                f"--deformations {args.deformations} holds {holds} deformations, not "
                f"{args.deformation}; drop --deformation (the file says what it holds) or "
                f"give a file of {args.deformation} deformations."
            )
        if saved.get("kind") == "diffeo":  # coefficients, not TPS displacements
            from defstab.measure.deformations import diffeo_replay

            deformation = diffeo_replay(
                DeformationSpec.from_record(saved), replay.params, tuple(source.image_shape[-2:])
            )
        if replay.params.shape[0] != args.images:
            raise ValueError(
                f"--deformations holds {replay.params.shape[0]} deformations; pass --images "
                f"{replay.params.shape[0]} (and the --seed it was saved with) to replay them."
            )
        forced = check_replay(replay, drawn_for, force=args.force_replay)
        if forced:
            warn(f"--force-replay: {'; '.join(forced)}; the deformations are replayed anyway.")
    elif args.deformation == "diffeo":
        displacement = args.displacement
        if args.temperature is None and displacement is None:
            displacement = 1.0
        deformation = DeformationSpec.diffeo(
            tuple(source.image_shape[-2:]), args.cut or 3, args.temperature, displacement
        )
    else:
        deformation = DeformationSpec.for_images(h, args.grid, args.max_disp)
    worst_case = None
    if args.worst_case:
        from defstab.measure.worst_case import WorstCaseTPS

        if replay is not None:
            raise ValueError("--worst-case attacks within the random budget; drop --deformations.")
        worst_case = WorstCaseTPS.like(
            deformation,
            steps=args.attack_steps,
            restarts=args.attack_restarts,
            layer=args.attack_layer,
            objective=args.attack_objective,
        )
    norm_name, normalize = pick_normalization(
        args.normalize, model_settings, data_spec, source.image_shape[0], device
    )
    model = model.to(device)
    if args.worst_case or args.min_flip or lie_transforms:  # these read class scores
        probe = data_probe.images(indices[:2]).to(device)
        use_class_scores(model, normalize(probe) if normalize else probe, args, model_settings)
    elif args.output_key is not None:
        raise ValueError(
            "--output-key names the class scores, which measure reads only with "
            "--worst-case, --min-flip or --lie-derivative; drop it."
        )
    settings = settings_of(args)

    def measure(shard=None):
        return measure_sensitivity(
            model,
            source,
            deformation,
            layers=args.layers,
            distance=args.distance,
            generator=gen,
            noise_control=not args.no_noise,
            preprocess=normalize,
            batch_size=args.batch_size,
            store_bytes=int(args.ram_budget * 2**30),
            progress=not args.quiet,
            tokens=args.tokens,
            worst_case=worst_case,
            normalizer=normalizer,
            shard=shard,
            aggregate=args.aggregate,
        )

    if shard is not None:  # one shard: its file, and nothing else
        parts = measure(shard)
        parts.meta["settings"] = settings
        path = parts.save(shard_file(resume, *shard))
        if not args.quiet:
            print(f"wrote {path} (images {parts.positions[0]}–{parts.positions[1] - 1})")
        return
    if shards > 1:
        found = load_shards(resume, shards, settings, warn)
        missing = [i for i in range(shards) if i not in found]
        if missing:
            if found and not args.quiet:
                print(f"{len(found)} of {shards} shards are done; running the other {len(missing)}")
            run_missing(args, resume, missing, shards, device)
            found = load_shards(resume, shards, settings, warn)
        result = merge_shards([found[i] for i in range(shards)])
        result.meta.pop("settings", None)
    else:
        result = measure()
    skipped = report_skipped(result.meta["skipped"], indices, out, result.n_images, final_out(args))
    for layer, note in result.meta["tuple_outputs"].items():
        warn(f"layer {layer} returns a tuple; its {note} is measured.")
    warn_inferred_strides(n for n, s in result.meta["stride_sources"].items() if s == "inferred")
    random_note = weights_caveat(model_settings)
    flip = None
    if args.min_flip:
        images = data_probe.images(indices)  # the attack needs them all at once
        flip = _minimal_flips(args, model, images, indices, labels, normalize, deformation, out)
    lie = None
    if lie_transforms:
        lie = _lie_derivatives(args, model, data_probe, indices, normalize, result, lie_transforms)
        _write_lie(lie, out)
    _sensitivity_table(result, lie, out / "sensitivity.csv")
    _per_image_table(result, indices, labels, out / "per_image.csv")
    record = drawn_for | {"deformation": result.meta["deformation"]}
    save_replay(out / "deformations.pt", result.deformation_params, record)
    if result.worst_params is not None:
        save_replay(out / "worst_deformations.pt", result.worst_params, record | {"worst": True})
        _worst_case_figure(data_probe, indices, result, out / "worst_case.png")
    d = result.meta["deformation"]
    what = describe_deformation(d)
    sampled = ", sampled normalizer" if result.meta["normalizer"] == "sampled" else ""
    title = (
        f"{model_settings['model']} on {data_probe.name} (n = {result.n_images}, {what}"
        f"{sampled})" + (" — RANDOM WEIGHTS" if random_note else "")
    )
    plot_sensitivity(result, out / "sensitivity.png", title=title)
    write_json(
        out / "config.json",
        {
            "command": "measure",
            **model_settings,
            "data": data_spec.record(),
            "data_name": data_probe.name,
            "split": args.split,
            "images": args.images,
            "image_size": h,
            "normalize": norm_name,
            "seed": args.seed,
            "device": str(device),
            "deformations_file": args.deformations,
            **result.meta,  # its "deformation" is the spec, recorded whole
            **({"min_flip": flip.summary()} if flip is not None else {}),
            **({"lie_derivative": lie.meta} if lie is not None else {}),
            "versions": versions(),
        },
    )
    write_json(
        out / "section.json",
        {
            "section": "measure",
            "title": f"{measured_words(d, lie)}: {model_settings['model']} on {data_probe.name}",
            "caveats": [random_note] if random_note else [],
            "text": [
                f"Weights: {model_settings['weights']}. {result.n_images} images, deformation "
                f"{what}, {args.distance} distance normalized per layer by the median over "
                + (
                    "all pairs of undeformed images. "
                    if result.meta["normalizer"] == "exact"
                    else f"the {result.normalizer_stats[0].pairs} disjoint pairs of undeformed "
                    "images of a seeded random order (sampled; its 95% interval per layer is "
                    "in the table). "
                )
                + "The band is ± 2 standard errors of the mean over "
                f"the {result.n_images} images (std / √n), not a spread over seeds."
            ]
            + (
                [
                    f"Worst case: projected gradient ascent, {worst_case.steps} steps, "
                    f"{worst_case.restarts} restarts, within the same budget, maximising the "
                    f"{worst_case.objective} at "
                    f"{result.meta['worst_case']['layer'] or 'the output'}."
                ]
                if worst_case is not None
                else []
            )
            + (
                [
                    "Minimal flipping C: median {strength_median:.3g} px, quartiles "
                    "{strength_q25:.3g}–{strength_q75:.3g} px; {fraction_flipped:.0%} of "
                    "{images} predictions flip within C ≤ {max_disp:g} px (an attack: upper "
                    "bounds).".format(**flip.summary())
                ]
                if flip is not None
                else []
            )
            + ([_lie_text(lie)] if lie is not None else []),
            "figures": ["sensitivity.png"]
            + (["worst_case.png"] if result.worst_params is not None else [])
            + (["robustness.png"] if flip is not None else [])
            + (["lie.png"] if lie is not None else []),
            "table_file": "sensitivity.csv",
        },
    )
    if not args.quiet:
        if random_note:
            print(random_note)
        stats = result.normalizer_stats[0]
        if result.meta["normalizer"] == "sampled":
            print(
                f"normalizer: sampled, the median over {stats.pairs} disjoint pairs of a seeded "
                "random order (95% interval per layer: normalizer_low/high in sensitivity.csv)"
            )
        else:
            print(f"normalizer: exact, the median over all {stats.pairs} pairs")
        rows = result.to_rows()
        width = max(4, *(len(row["layer"]) for row in rows))  # aligned for any name length
        head = f"{'layer':>5s}  {'name':{width}s} {'stride':>6s} {'s²':>6s} {'sensitivity':>11s}"
        if result.worst_mean is not None:
            head += f" {'worst':>7s}"
        if result.noise_mean is not None:
            head += f" {'noise':>7s} {'R_f':>7s}"
        print(head)
        for row in rows:
            s, copies = (
                "-" if row.get(k) is None else str(row[k]) for k in ("stride", "shifted_copies")
            )
            line = f"{row['layer_index']:5d}  {row['layer']:{width}s} {s:>6s} {copies:>6s}"
            line += f" {row['mean']:11.3f}"
            if "worst_mean" in row:
                line += f" {row['worst_mean']:7.3f}"
            if "noise_mean" in row:
                line += f" {row['noise_mean']:7.3f} {row['relative_stability']:7.3f}"
            print(line)
        if result.noise_mean is not None:
            print(
                "R_f: Petrini et al. 2021's relative stability (< 1: more stable to the "
                "deformation than to noise of equal norm); stride s: input pixels per feature "
                "pixel, s²: shifted copies full translation invariance needs there"
            )
        written = ["sensitivity.csv", "per_image.csv", "deformations.pt"]
        if skipped:
            written.append("skipped.csv")
        if result.worst_params is not None:
            written += ["worst_deformations.pt", "worst_case.png"]
        if flip is not None:
            written += ["flip.csv", "robustness.png"]
        if lie is not None:
            _print_lie(lie)
            written += ["lie.csv"] + (["lie_layers.csv"] if lie.units else []) + ["lie.png"]
        written += ["sensitivity.png", "config.json", "section.json"]
        print(f"wrote {final_out(args)}/: {', '.join(written)}")


def check_shard_chunks(shards: int, images: int, batch_size: int | None) -> None:
    """Shards split the chunks of ``batch_size`` images (at most 64 when not given), so
    there must be a chunk per shard: said before any model is loaded, with the fix."""
    chunk = batch_size or 64
    chunks = math.ceil(images / chunk)
    if shards > chunks:
        most = max(1, images // shards)
        raise ValueError(
            f"--shards {shards} needs {shards} chunks of images, and {images} images make "
            f"{chunks} chunk(s) of {'--batch-size ' if batch_size else 'up to '}{chunk}; give "
            f"--batch-size {most} or fewer (or at most {chunks} shard(s))."
        )


def check_lie_options(args, shard) -> tuple[str, ...]:
    """The Lie derivative's transforms (empty without --lie-derivative); one sentence for
    an unknown name or an option without it."""
    from defstab.measure.lie_actions import parse_transforms

    if args.lie_derivative is None:
        if args.lie_images is not None or args.no_lie_contributions:
            raise ValueError(
                "--lie-images and --no-lie-contributions go with --lie-derivative TRANSFORMS."
            )
        return ()
    transforms = parse_transforms(args.lie_derivative)
    if shard is not None:
        raise ValueError(
            "--lie-derivative runs where the shards are merged; drop it from --shard runs "
            "and give it to the --shards run."
        )
    if args.lie_images is not None and not 1 <= args.lie_images <= args.images:
        raise ValueError(
            f"--lie-images must be between 1 and --images ({args.images}), got {args.lie_images}."
        )
    return transforms


def _lie_derivatives(args, model, data, indices, normalize, result, transforms):
    """The Lie derivative of the measured layers on the first --lie-images images."""
    from defstab.data.stream import DatasetImages
    from defstab.measure.lie import lie_derivatives

    count = args.lie_images or len(indices)
    return lie_derivatives(
        model,
        DatasetImages(data, indices[:count], workers=args.read_workers),
        transforms,
        layers=result.layers[1:],
        preprocess=normalize,
        contributions=not args.no_lie_contributions,
        batch_size=args.batch_size,
        progress=not args.quiet,
        convention=args.lie_derivative_convention,
    )


def _write_lie(lie, out) -> None:
    from defstab.io.tables import write_csv
    from defstab.plotting.lie import plot_lie

    write_csv(out / "lie.csv", lie.end_to_end_rows())
    if lie.units:
        write_csv(out / "lie_layers.csv", lie.unit_rows())
    plot_lie(lie, out / "lie.png")


def _sensitivity_table(result, lie, path) -> None:
    """sensitivity.csv: the measurement's rows, with the lie_* columns when computed."""
    from defstab.io.tables import write_csv

    rows = result.to_rows()
    if lie is not None:
        columns = lie.layer_columns()
        for row in rows:
            row.update(columns[row["layer"]])
    write_csv(path, rows)


def _lie_text(lie) -> str:
    parts = [
        f"{t}: ‖L_X softmax‖² {row['end_to_end_sq_mean']:.3g}, mean |L_X softmax| "
        f"{row['end_to_end_abs_mean']:.3g}"
        for t, row in zip(lie.transforms, lie.end_to_end_rows(), strict=True)
    ]
    return (
        f"Lie derivative (Gruver et al. 2023) on {lie.n_images} images, per unit of their "
        "parameter (translation: t = 1 is (side − 1)/2 px; rotation: radians; scale: factor "
        f"1 − t); {lie.meta['derivative']}. End to end — "
        + "; ".join(parts)
        + ". The lie_* columns of the table: ‖L_X r(x)‖ / ‖r(x)‖ per layer (0: equivariant) "
        "and each layer's contribution ‖J L_i‖² (the exact value their probe estimator "
        "estimates)."
    )


def _print_lie(lie) -> None:
    print("Lie derivative (Gruver et al. 2023): ‖L_X r(x)‖ / ‖r(x)‖ per layer")
    columns = lie.layer_columns()
    width = max(5, *(len(name) for name in lie.layers))
    print(f"{'layer':{width}s} " + " ".join(f"{t:>11s}" for t in lie.transforms))
    for name in lie.layers:
        values = " ".join(f"{columns[name][f'lie_{t}']:11.4g}" for t in lie.transforms)
        print(f"{name:{width}s} {values}")
    for row in lie.end_to_end_rows():
        print(
            f"end to end, {row['transform']}: ‖L_X softmax‖² {row['end_to_end_sq_mean']:.4g} "
            f"(the paper's), mean |L_X softmax| {row['end_to_end_abs_mean']:.4g} (their code)"
        )


def check_deformation_options(args) -> None:
    """One sentence for options of the other deformation family, or a search that works
    on TPS only."""
    diffeo_only = [("--temperature", args.temperature), ("--displacement", args.displacement),
                   ("--cut", args.cut)]  # fmt: skip
    if args.deformation == "tps":
        given = [name for name, v in diffeo_only if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} apply to --deformation diffeo; add it.")
        return
    given = [name for name, v in (("--grid", args.grid), ("--max-disp", args.max_disp))
             if v is not None]  # fmt: skip
    if given:
        raise ValueError(f"{', '.join(given)} apply to TPS deformations, not to diffeo.")
    if args.temperature is not None and args.displacement is not None:
        raise ValueError("give --temperature or --displacement, not both (each sets T).")
    if args.worst_case or args.min_flip:
        raise ValueError(
            "--worst-case and --min-flip search TPS deformations; use them without "
            "--deformation diffeo."
        )


def measured_words(d: dict, lie=None) -> str:
    """What a measurement measured, for its report section's title: a TPS, a diffeo and a
    Lie-derivative run of the same model get different titles."""
    if d.get("kind") == "diffeo":
        what = f"Sensitivity to diffeomorphisms ({describe_deformation(d).removeprefix('diffeo ')})"
    elif d.get("max_disp") is not None:
        what = f"Sensitivity to TPS deformations ({describe_deformation(d)})"
    else:
        what = "Sensitivity to replayed deformations"
    if lie is not None:
        what += f" and the Lie derivative ({', '.join(lie.transforms)})"
    return what


def describe_deformation(d: dict) -> str:
    """A recorded deformation in a few words (figure titles, the report)."""
    if d.get("kind") == "diffeo":
        delta = d.get("typical_displacement_px")
        return f"diffeo T = {d['temperature']:.3g}, c = {d['cut']}" + (
            f", δ = {delta:.2f} px" if delta is not None else ""
        )
    return (
        f"k = {d['grid']}, C = {d['max_disp']:g}" if d.get("max_disp") is not None else "replayed"
    )


def _minimal_flips(args, model, images, indices, labels, normalize, deformation, out):
    """--min-flip: the bisection over C, its per-image table and robustness curve."""
    import torch

    from defstab.io.tables import write_csv
    from defstab.measure.worst_case import minimal_flip_strength
    from defstab.plotting.sensitivity import plot_robustness

    if not hasattr(deformation, "grid") or not isinstance(deformation.grid, int):
        raise ValueError("--min-flip searches over C itself; drop --deformations.")
    top = args.flip_max if args.flip_max is not None else 2 * deformation.max_disp
    if not top > 0:
        raise ValueError(f"--flip-max must be positive, got {top}.")
    flip = minimal_flip_strength(
        model,
        images,
        deformation.grid,
        max_disp=top,
        steps=args.attack_steps,
        restarts=args.attack_restarts,
        preprocess=normalize,
        generator=torch.Generator().manual_seed(args.seed + 1),
        padding=deformation.padding,
    )
    write_csv(
        out / "flip.csv",
        [
            {
                "image": int(indices[j]),
                "label": int(labels[j]),
                "predicted": int(flip.predicted[j]),
                "min_flip_c": float(flip.strength[j]),
            }
            for j in range(len(flip.strength))
        ],
    )
    plot_robustness(flip, out / "robustness.png")
    s = flip.summary()
    print(
        f"minimal flipping C: median {s['strength_median']:.3g} px (quartiles "
        f"{s['strength_q25']:.3g}–{s['strength_q75']:.3g}); {s['fraction_flipped']:.0%} of "
        f"{s['images']} predictions flip within C ≤ {top:g}"
    )
    return flip


def _per_image_table(result, indices, labels, path) -> None:
    """per_image.csv, one row per (layer, image), streamed: at 50,000 images and 15
    layers it is 750,000 rows, never held as Python objects. Unreadable images (NaN)
    have no rows; skipped.csv names them."""
    from defstab.io.tables import write_csv_rows

    columns = ["layer_index", "layer", "image", "label", "value"]
    values = [result.per_image]
    for name, extra in (("noise_value", result.noise_per_image),
                        ("worst_value", result.worst_per_image)):  # fmt: skip
        if extra is not None:
            columns.append(name)
            values.append(extra)
    measured = (~result.per_image[0].isnan()).nonzero().squeeze(1).tolist()
    image, label = indices.tolist(), labels.tolist()
    table = [v.tolist() for v in values]

    def rows():
        for i, name in enumerate(result.layers):
            for j in measured:
                yield (i, name, image[j], label[j], *(t[i][j] for t in table))

    write_csv_rows(path, columns, rows())


def _worst_case_figure(data, indices, result, path, count: int = 3) -> None:
    """The images whose worst case moved the attacked layer most beyond the random one:
    random and worst-case deformation side by side (the paper's Fig. 2 layout)."""
    import torch

    from defstab.deform import apply_tps, get_tps
    from defstab.plotting.deformation import deformation_figure

    layer = result.layers.index(result.meta["worst_case"]["layer"] or result.layers[-1])
    gain = (result.worst_per_image[layer] - result.per_image[layer]).nan_to_num(-math.inf)
    pick = gain.argsort(descending=True)[:count]
    spec = result.meta["worst_case"]
    x = data.images(indices[pick])
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    both = torch.cat([result.deformation_params[pick], result.worst_params[pick]])
    twice = torch.cat([x, x])
    deformed = apply_tps(twice, both, spec["grid"], spec["padding"])
    names = [f"image {int(i)} random" for i in pick] + [f"image {int(i)} worst" for i in pick]
    tps = get_tps(tuple(x.shape[-2:]), spec["grid"])
    order = [j for i in range(len(pick)) for j in (i, i + len(pick))]
    deformation_figure(
        twice[order], both[order], deformed[order], tps, path, names=[names[j] for j in order]
    )


def _read_deformations(path: str):
    """The :class:`~defstab.io.replay.Replay` of an earlier measure: displacements
    (N, k·k, 2), fields (N, H, W, 2) or diffeo coefficients (N, 2, c, c), and the record
    of the images they belong to."""
    from defstab.io.replay import read_replay

    replay = read_replay(path, "--deformations")
    t = replay.params
    saved = (replay.record or {}).get("deformation") or {}
    if saved.get("kind") == "diffeo":  # (N, 2, c, c) sine coefficients, checked on use
        return replay
    if t.ndim not in (3, 4) or t.shape[-1] != 2:
        raise ValueError(
            f"--deformations {path} must hold displacements (N, k·k, 2) or fields "
            "(N, H, W, 2), as measure writes to deformations.pt."
        )
    return replay


def _data_identity(spec) -> dict:
    """The data as a replay file records it: its kind and where it is (resolved, so that
    a relative and an absolute path to the same folder agree)."""
    from pathlib import Path

    where = str(Path(spec.path).resolve()) if spec.path is not None else spec.text
    return {"kind": spec.kind, "source": where}


def warn_if_resized(data, size, warn) -> None:
    """Say so when file images are scaled by more than 2× to reach the model's size."""
    if data.paths is None or not size:
        return
    from PIL import Image

    for path in data.paths[:20]:  # the first readable one: an unreadable file is skipped later
        try:
            with Image.open(path) as im:
                width, height = im.size
            break
        except OSError:
            continue
    else:
        return
    short = min(width, height)
    if size > 2 * short or short > 2 * size:
        warn(
            f"images of {width}×{height} px are resized ×{size / short:.2g} to "
            f"{size} px; pass --image-size to choose the size."
        )
