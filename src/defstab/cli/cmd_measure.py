"""``defstab measure``: layer-wise sensitivity of a model to random deformations."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub):
    from defstab.cli.common import add_data_args, add_model_args

    p = sub.add_parser("measure", help="sensitivity of every layer to random TPS deformations")
    add_model_args(p)
    add_data_args(p)
    p.add_argument(
        "--layers",
        default=None,
        help="comma-separated module names (default: the paper's layers, or every "
        "conv and pooling module)",
    )
    p.add_argument("--images", type=int, default=128, help="number of images (default 128)")
    p.add_argument("--grid", type=int, default=None, help="k (default 3 for ≤64 px, else 5)")
    p.add_argument("--max-disp", type=float, default=None, help="C (default 2 for ≤64 px, else 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of image order, deformations, noise")
    p.add_argument("--distance", default="cosine", choices=["cosine", "euclidean"])
    p.add_argument("--no-noise", action="store_true", help="skip the noise control")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true")
    return p


def run(args) -> None:
    import torch

    from defstab.cli.common import pick_device, resolve_model
    from defstab.data.normalize import default_normalization, make_normalize
    from defstab.data.sources import load_data
    from defstab.data.spec import DataSpec
    from defstab.deform import DeformationSpec
    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.io.tables import write_csv
    from defstab.measure import measure_sensitivity
    from defstab.models.loading import model_family, native_input_size
    from defstab.plotting.sensitivity import plot_sensitivity

    if args.images < 2:
        raise ValueError(f"--images must be at least 2, got {args.images}.")
    device = pick_device(args.device)
    out = Path(args.out)
    data_spec = DataSpec.parse(args.data)
    data_probe = load_data(data_spec, args.split, image_size=args.image_size)
    model, model_settings = resolve_model(args, in_channels=data_probe.channels)
    size = args.image_size or native_input_size(model, args.model)
    if data_probe.paths is not None and data_probe.image_size is None:
        data_probe.image_size = size
    gen = torch.Generator().manual_seed(args.seed)
    images, labels, indices = data_probe.sample(args.images, gen)
    h = images.shape[-1]
    deformation = DeformationSpec.for_images(h, args.grid, args.max_disp)
    norm_name = args.normalize or default_normalization(model_family(args.model), data_spec)
    normalize = make_normalize(norm_name, images.shape[1])
    model = model.to(device)
    if normalize is not None:
        normalize = normalize.to(device)
    result = measure_sensitivity(
        model,
        images,
        deformation,
        layers=args.layers,
        distance=args.distance,
        generator=gen,
        noise_control=not args.no_noise,
        preprocess=normalize,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    out.mkdir(parents=True, exist_ok=True)
    result.to_csv(out / "sensitivity.csv")
    per_image = [
        {
            "layer_index": i,
            "layer": name,
            "image": int(indices[j]),
            "label": int(labels[j]),
            "value": float(result.per_image[i, j]),
            **(
                {"noise_value": float(result.noise_per_image[i, j])}
                if result.noise_per_image is not None
                else {}
            ),
        }
        for i, name in enumerate(result.layers)
        for j in range(result.n_images)
    ]
    write_csv(out / "per_image.csv", per_image)
    torch.save(result.deformation_params, out / "deformations.pt")
    plot_sensitivity(
        result,
        out / "sensitivity.png",
        title=f"{args.model} on {data_probe.name} (n = {result.n_images}, "
        f"k = {deformation.grid}, C = {deformation.max_disp:g})",
    )
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
            **result.meta,  # its "deformation" is the spec, recorded whole
            "versions": versions(),
        },
    )
    if not args.quiet:
        print(f"{'layer':>5s}  {'name':24s} {'sensitivity':>11s} {'noise':>7s}")
        for row in result.to_rows():
            noise = f"{row['noise_mean']:7.3f}" if "noise_mean" in row else ""
            print(f"{row['layer_index']:5d}  {row['layer']:24s} {row['mean']:11.3f} {noise}")
        print(f"wrote {out}/sensitivity.csv, per_image.csv, sensitivity.png, config.json")
