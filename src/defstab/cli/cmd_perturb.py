"""``defstab perturb``: ImageNet-P's flip probability, top-5 distance and flip rate over
perturbation sequences made on the fly (Hendrycks & Dietterich 2019)."""

from __future__ import annotations

HELP = "ImageNet-P flip probability/rate, top-5 distance over perturbation sequences"

PERTURBATIONS = ("translate", "rotate", "tilt", "scale", "gaussian_noise", "shot_noise")


def add_parser(sub):
    from defstab.cli.common import add_data_args, add_model_args, add_read_workers

    p = sub.add_parser("perturb", help=HELP)
    add_model_args(p, scores=True)
    add_data_args(p)
    p.add_argument("--images", type=int, default=32, help="videos: one per image")
    add_read_workers(p)
    p.add_argument(
        "--preset",
        default="imagenet-p",
        choices=["imagenet-p", "cifar-p"],
        help="the generation parameters of make_imagenet_p.py (images resized to 256 px, "
        "perturbed, centre-cropped to 224; 41 translate frames of 1 px, 31 of 1° rotation "
        "and tilt, scale 0.40…1.15) or make_cifar_p.py (32 px, 16 translate frames, tilt "
        "0.75° steps, scale 0.70…1.30)",
    )
    p.add_argument(
        "--perturbations",
        default=",".join(PERTURBATIONS),
        help=f"comma-separated: {', '.join(PERTURBATIONS)} (default: all)",
    )
    p.add_argument(
        "--difficulty",
        type=int,
        default=1,
        help="1, 2 or 3: frames compared d apart (geometric) or the noise level (noise), as "
        "test.py's -d",
    )
    p.add_argument(
        "--centre",
        default="authors",
        choices=["authors", "modern"],
        help="where rotate and scale turn: authors (default; (w/2 + ½, h/2 + ½), as the 2018 "
        "torchvision that made the published ImageNet-P videos: compare with their numbers) "
        "or modern (today's torchvision, (w/2, h/2))",
    )
    p.add_argument(
        "--baseline-model",
        default=None,
        help="a second network measured on the same sequences: FR = FP / its FP (the paper "
        "uses AlexNet: torchvision:alexnet --baseline-pretrained)",
    )
    p.add_argument("--baseline-checkpoint", default=None, help="weights of the baseline")
    p.add_argument("--baseline-width", type=float, default=None,
                   help="registry baseline: channel multiplier (as --width)")  # fmt: skip
    p.add_argument("--baseline-run", default=None, metavar="DIR",
                   help="the baseline from a 'defstab train' folder")  # fmt: skip
    p.add_argument("--baseline-pretrained", action="store_true",
                   help="the baseline's published weights (needs the internet)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="images drawn and noise")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    return p


def _parse_perturbations(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in PERTURBATIONS]
    if bad or not names:
        raise ValueError(
            f"unknown perturbation {', '.join(bad) or repr(text)}; choose from "
            f"{', '.join(PERTURBATIONS)}."
        )
    return list(dict.fromkeys(names))


def _baseline_args(args):
    """A copy of ``args`` whose model options name the baseline (None without one)."""
    import copy

    if args.baseline_model and args.baseline_run:
        raise ValueError("give --baseline-model or --baseline-run, not both.")
    if not (args.baseline_model or args.baseline_run):
        if args.baseline_checkpoint or args.baseline_pretrained or args.baseline_width:
            raise ValueError(
                "--baseline-checkpoint, --baseline-width and --baseline-pretrained need "
                "--baseline-model."
            )
        return None
    base = copy.copy(args)
    base.model, base.run = args.baseline_model, args.baseline_run
    base.checkpoint = args.baseline_checkpoint
    base.pretrained, base.step, base.output_key = args.baseline_pretrained, None, None
    base.num_classes = base.init_seed = base.padding = None
    base.width = args.baseline_width
    base._pretrained_option = "--baseline-pretrained"  # named if the download fails
    return base


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
        weights_caveat,
    )
    from defstab.data.sources import load_data
    from defstab.data.spec import DataSpec
    from defstab.data.stream import DatasetImages, MappedImages
    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.io.tables import write_csv
    from defstab.models.loading import native_input_size
    from defstab.translate.protocols import resize
    from defstab.translate.sequences import NOISES, get_sequence_preset

    out = check_out_folder(args.out)
    perturbations = _parse_perturbations(args.perturbations)
    preset = get_sequence_preset(args.preset)
    base_args = _baseline_args(args)
    device = pick_device(args.device)
    data_spec = DataSpec.parse(args.data)
    data = load_data(data_spec, args.split, image_size=None)
    if len(data.classes) < 2:
        raise ValueError("perturb compares top-1 classes; the data must be a classification set.")
    networks = {"model": resolve_model(args, in_channels=data.channels)}
    if base_args is not None:
        networks["baseline"] = resolve_model(base_args, in_channels=data.channels)
    gen = torch.Generator().manual_seed(args.seed)
    ids = data.draw(args.images, gen)
    ragged = data.paths is not None and preset.crop is not None
    if data.paths is not None and preset.source_size is not None:
        data.image_size = preset.source_size
        # the whole short-side-resized image is perturbed and cropped after, as the
        # authors' make_imagenet_p.py does: its aspect is kept
        data.keep_aspect = ragged
    images = DatasetImages(data, ids, workers=args.read_workers)
    channels, height, width = images.image_shape
    if width != height and not ragged:
        raise ValueError(
            f"perturb makes square frames and these images are {width}×{height} px (W×H); "
            "give them as folder:PATH (resized and centre-cropped)."
        )
    source = preset.source_size or width
    if width != source and not ragged:
        if source > 2 * width or width > 2 * source:
            warn(f"images of {width} px are resized ×{source / width:.2g} to {source} px for "
                 f"the {args.preset} preset.")  # fmt: skip
        images = MappedImages(images, lambda x: resize(x, source), (channels, source, source))
    side = preset.crop or source
    pres, settings_of = {}, {}
    for role, (model, settings) in networks.items():
        model = model.to(device).eval()
        name = settings["model"]
        native = native_input_size(model, name)
        if native is not None and native != side:
            warn(f"{name} takes {native}-px inputs; the {args.preset} frames are {side} px.")
        given = args.normalize if role == "model" else None  # the baseline: its own
        norm, pre = pick_normalization(given, settings, data_spec, channels, device)
        probe = torch.rand(2, channels, side, side, generator=torch.Generator().manual_seed(0))
        probe = probe.to(device)
        try:
            use_class_scores(model, pre(probe) if pre is not None else probe,
                             args if role == "model" else base_args, settings)  # fmt: skip
        except (RuntimeError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(
                f"the {role} {name} cannot take {channels}×{side}×{side} frames ({first})."
            ) from None
        networks[role] = (model, settings)
        pres[role] = pre
        settings_of[role] = settings | {"normalize": norm}
    per_video = _measure(networks, pres, images, perturbations, preset, args, device)
    summary = []
    for pert in perturbations:
        row = {"perturbation": pert, "preset": args.preset, "difficulty": args.difficulty,
               "frames": preset.frames(pert), "videos": len(per_video[pert]["model"]["fp"]),
               "noise": pert in NOISES}  # fmt: skip
        for role in networks:
            for key in ("fp", "t5d"):
                row[key if role == "model" else f"baseline_{key}"] = float(
                    per_video[pert][role][key].mean()
                )
        if "baseline" in networks:
            from defstab.translate.flips import flip_rate

            row["fr"] = flip_rate(row["fp"], row["baseline_fp"])
            row["t5d_ratio"] = flip_rate(row["t5d"], row["baseline_t5d"])
        summary.append(row)
    if "baseline" in networks:
        import math

        rates = [r["fr"] for r in summary if math.isfinite(r["fr"])]
        mean_row = {"perturbation": "mean", "preset": args.preset, "difficulty": args.difficulty,
                    "fr": sum(rates) / len(rates) if rates else float("nan")}  # fmt: skip
        summary.append(mean_row)
    write_csv(out / "summary.csv", summary)
    rows = []
    for pert in perturbations:
        for i, item in enumerate(per_video[pert]["items"].tolist()):
            row = {"perturbation": pert, "image": int(ids[item])}
            for role in networks:
                prefix = "" if role == "model" else "baseline_"
                for key in ("fp", "t5d"):
                    row[prefix + key] = float(per_video[pert][role][key][i])
            rows.append(row)
    write_csv(out / "per_video.csv", rows)
    skipped = report_skipped(
        images.skipped, ids, out, args.images - len(images.skipped), final_out(args)
    )
    from defstab.plotting.perturbation import flip_figure

    caveat = weights_caveat(settings_of["model"])
    mark = " — RANDOM WEIGHTS" if caveat else ""
    title = f"{settings_of['model']['model']}: ImageNet-P measures ({args.preset}){mark}"
    flip_figure(summary, out / "flips.png", title)
    write_json(
        out / "config.json",
        {
            "command": "perturb",
            **settings_of["model"],
            "baseline": settings_of.get("baseline"),
            "data": data_spec.record(),
            "images": args.images,
            "preset": preset.record(),
            "perturbations": perturbations,
            "difficulty": args.difficulty,
            "centre": args.centre,
            "source_images": "short side resized to the preset's source size, aspect kept, "
            "perturbed whole, centre-cropped after"
            if ragged
            else "square",
            "seed": args.seed,
            "versions": versions(),
        },
    )
    base_name = settings_of.get("baseline", {}).get("model")
    write_json(
        out / "section.json",
        {
            "section": "perturb",
            "title": f"Perturbation sequences: {settings_of['model']['model']} on {data.name}",
            "caveats": [caveat] if caveat else [],
            "text": [
                f"Weights: {settings_of['model']['weights']}. {args.images} videos, one per "
                f"image; {args.preset} generation parameters, difficulty {args.difficulty}; "
                "frames made on the fly (not the published H.264 videos); rotations and "
                + (
                    "scalings about (w/2 + ½, h/2 + ½), as the 2018 torchvision that made them."
                    if args.centre == "authors"
                    else "scalings about (w/2, h/2) (today's torchvision, not the published "
                    "videos' centre)."
                ),
                "FP: the fraction of compared frame pairs whose top-1 class differs, per video "
                "then over videos; T5D: ImageNet-P's top-5 distance; "
                + (
                    f"FR = FP / FP of the baseline {base_name} on the same sequences."
                    if base_name
                    else "no baseline was given, so no flip rate."
                ),  # fmt: skip
            ],
            "figures": ["flips.png"],
            "table_file": "summary.csv",
        },
    )
    if caveat:
        print(caveat)
    for row in summary:
        print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in row.items()))  # fmt: skip
    written = ["summary.csv", "per_video.csv"] + (["skipped.csv"] if skipped else [])
    files = [*written, "flips.png", "config.json", "section.json"]
    print(f"wrote {final_out(args)}/: {', '.join(files)}")


def _measure(networks, pres, images, perturbations, preset, args, device) -> dict:
    """Per perturbation and network: per-video FP and T5D ((N,) each), chunk by chunk."""
    import torch

    from defstab.models.outputs import class_scores
    from defstab.tap import evaluation_mode, run_checked
    from defstab.translate.flips import sequence_measures
    from defstab.translate.sequences import NOISES, make_sequence

    noise_gen = torch.Generator().manual_seed(args.seed + 1)
    found = {p: {"items": [], **{r: {"fp": [], "t5d": []} for r in networks}}
             for p in perturbations}  # fmt: skip
    chunks = images.batches(None, 16)
    if not args.quiet:
        from defstab.progress import progress

        chunks = progress(chunks, total=-(-len(images) // 16), desc="videos", unit="chunk",
                          leave=False)  # fmt: skip
    with torch.no_grad():
        for positions, x in chunks:
            for pert in perturbations:
                frames, _ = make_sequence(x, pert, preset, args.difficulty, noise_gen,
                                          centre=args.centre)  # fmt: skip
                n, f = frames.shape[:2]
                flat = frames.flatten(0, 1)
                found[pert]["items"].append(positions)
                for role, (model, _) in networks.items():
                    scores = []
                    with evaluation_mode(model):
                        for i in range(0, flat.shape[0], 128):
                            batch = flat[i : i + 128].to(device)
                            if pres[role] is not None:
                                batch = pres[role](batch)
                            scores.append(class_scores(run_checked(model, batch)).float().cpu())
                    logits = torch.cat(scores).view(n, f, -1)
                    step = 1 if pert in NOISES else args.difficulty
                    got = sequence_measures(logits, step, pert in NOISES)
                    for key in ("fp", "t5d"):
                        found[pert][role][key].append(got[key])
    for pert in perturbations:
        found[pert]["items"] = torch.cat(found[pert]["items"])
        for role in networks:
            for key in ("fp", "t5d"):
                found[pert][role][key] = torch.cat(found[pert][role][key])
    return found
