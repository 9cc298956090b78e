"""``defstab deform``: draw deformations of images — random TPS (the paper's Fig. 2),
Petrini et al.'s diffeomorphisms, Engstrom et al.'s rotations + translations — or saved
ones: a measurement's deformations.pt (TPS or diffeo), spatial's worst transforms."""

from __future__ import annotations

HELP = "draw TPS, diffeomorphism or rotation + translation deformations of images"


def add_parser(sub):
    p = sub.add_parser("deform", help=HELP)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument(
        "--kind",
        default="tps",
        choices=["tps", "diffeo", "spatial"],
        help="tps (default; --grid, --max-disp), diffeo (Petrini: --displacement or "
        "--temperature, --cut), spatial (Engstrom: random within --spatial-preset, or "
        "--transforms FILE)",
    )
    p.add_argument("--grid", type=int, default=5, help="control points per side (default 5)")
    p.add_argument("--max-disp", type=float, default=10.0, help="C in pixels (default 10)")
    p.add_argument(
        "--size",
        type=int,
        default=224,
        help="resize short side and centre-crop to this size (0 = keep; default 224)",
    )
    p.add_argument("--padding", default="zeros", choices=["zeros", "border", "reflection"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--displacements",
        metavar="FILE",
        default=None,
        help="draw saved displacements (N, k·k, 2) instead of random ones, e.g. the "
        "worst_deformations.pt of 'defstab measure --worst-case' (one row per IMAGE, in order)",
    )
    p.add_argument("--temperature", type=float, default=None, help="diffeo: T")
    p.add_argument(
        "--displacement",
        type=float,
        default=None,
        metavar="PX",
        help="diffeo: typical displacement in pixels (default 1)",
    )
    p.add_argument("--cut", type=int, default=3, help="diffeo: the cut-off c (default 3)")
    p.add_argument(
        "--spatial-preset",
        default=None,
        choices=["engstrom-cifar", "engstrom-imagenet"],
        help="spatial: the ranges and resampling (default by image size, as defstab spatial)",
    )
    p.add_argument(
        "--transforms",
        metavar="FILE",
        default=None,
        help="spatial: the per_image.csv of 'defstab spatial' (its worst angle and shift per "
        "image; one row per IMAGE, in order)",
    )
    p.add_argument("-o", "--output", default="deformations.png", help="PNG, SVG or PDF")
    return p


def run(args) -> None:
    import math
    import sys

    import torch

    from defstab.deform import apply_tps, get_tps, random_tps
    from defstab.io.images import read_image
    from defstab.plotting.common import check_figure_path
    from defstab.plotting.deformation import deformation_figure

    out = check_figure_path(args.output)
    replay = None
    if args.displacements:
        from defstab.io.replay import read_replay

        replay = read_replay(args.displacements, "--displacements")
    size = args.size or None
    recorded = _recorded_side(args, replay)
    if recorded and recorded != size and "size" not in getattr(args, "_given", {}):
        size = recorded  # the size the file was made for, unless --size says otherwise
        made = args.displacements or args.transforms
        print(f"defstab: images read at {size} px, the size {made} was made for.", file=sys.stderr)
    images = [read_image(path, size) for path in args.images]
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) > 1:
        raise ValueError(f"images differ in size {sorted(shapes)}; pass --size to crop them alike.")
    batch = torch.stack(images)
    names = [str(p).rsplit("/", 1)[-1] for p in args.images]
    if replay is not None:
        args.kind = _replay_kind(args, replay, tuple(batch.shape[-2:]))
    if args.kind != "tps":
        _draw_fields(args, batch, names, out, replay)
        print(f"wrote {out}")
        return
    grid = args.grid
    if args.displacements:
        disp = replay.params
        grid = math.isqrt(disp.shape[1]) if isinstance(disp, torch.Tensor) and disp.ndim == 3 else 0
        if grid < 2 or disp.shape != (len(images), grid * grid, 2):
            raise ValueError(
                f"--displacements {args.displacements} must hold one (k·k, 2) row per image "
                f"({len(images)} images), got {tuple(getattr(disp, 'shape', ()))}."
            )
        disp = disp.float()
        deformed = apply_tps(batch, disp, grid, padding=args.padding)
    else:
        gen = torch.Generator().manual_seed(args.seed)
        deformed, disp = random_tps(batch, grid, args.max_disp, gen, padding=args.padding)
    tps = get_tps(tuple(batch.shape[-2:]), grid)
    deformation_figure(batch, disp, deformed, tps, out, names=names)
    print(f"wrote {out}")


def _draw_fields(args, batch, names, out, replay) -> None:
    """A diffeomorphism or a rotation + translation per image: original, field, deformed."""
    import torch

    from defstab.deform.warp import warp
    from defstab.plotting.deformation import field_figure

    n, size = batch.shape[0], tuple(batch.shape[-2:])
    gen = torch.Generator().manual_seed(args.seed)
    captions = None
    if args.kind == "diffeo":
        from defstab.deform import DeformationSpec
        from defstab.deform.diffeo import diffeo_field

        if replay is not None:
            spec = DeformationSpec.from_record(replay.record["deformation"])
            coefficients = replay.params
            if coefficients.ndim != 4 or coefficients.shape[0] != n:
                raise ValueError(
                    f"--displacements {args.displacements} holds {coefficients.shape[0]} "
                    f"diffeomorphisms; give {coefficients.shape[0]} images, in order."
                )
        else:
            displacement = args.displacement
            if args.temperature is None and displacement is None:
                displacement = 1.0
            spec = DeformationSpec.diffeo(size, args.cut, args.temperature, displacement)
            coefficients = spec.sample(n, gen)
        fields = diffeo_field(coefficients, size, spec.temperature)
        title = f"diffeomorphism (T = {spec.temperature:.3g}, c = {spec.cut})"
        deformed = warp(batch, fields.float(), padding=spec.padding)
    else:
        from defstab.translate.spatial import (
            apply_transforms,
            get_spatial_preset,
            random_transforms,
            transform_fields,
        )

        if size[0] != size[1]:
            raise ValueError("spatial transforms take square images; pass --size.")
        preset = get_spatial_preset(
            args.spatial_preset or ("engstrom-cifar" if size[0] <= 64 else "engstrom-imagenet")
        )
        if args.transforms:
            recorded = _spatial_settings(args.transforms, size[0])
            if recorded is not None and not args.spatial_preset:
                preset = get_spatial_preset(recorded)  # the preset the worst ones were found in
            transforms = _read_transforms(args.transforms, n)
        else:
            transforms = random_transforms(n, 1, preset, size[0], gen)[:, 0]
        fields = transform_fields(transforms, preset, size[0])
        deformed = apply_transforms(batch, transforms[:, None], preset)[:, 0]
        captions = [f"{a:+.1f}°, ({x:+.1f}, {y:+.1f}) px" for a, x, y in transforms.tolist()]
        title = f"rotation + translation ({preset.name})"
    field_figure(batch, fields, deformed, out, title, names=names, captions=captions)


def _recorded_side(args, replay) -> int | None:
    """The square image side a --displacements file or a --transforms CSV (its
    config.json) was made for, if it says so."""
    if replay is not None:
        drawn = (replay.record or {}).get("image_size")
        return int(drawn[0]) if drawn and len(set(drawn)) == 1 else None
    if args.transforms:
        side = _spatial_config(args.transforms).get("image_size")
        return int(side) if isinstance(side, int) else None
    return None


def _spatial_config(path) -> dict:
    """The config.json beside spatial's per_image.csv ``path`` ({} when there is none: a
    CSV on its own, whose size cannot be checked and whose preset goes by image size)."""
    import json
    from pathlib import Path

    try:
        record = json.loads((Path(path).parent / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _replay_kind(args, replay, size: tuple[int, int]) -> str:
    """The kind of deformation the --displacements file holds (TPS or diffeo), checked
    against a --kind the user wrote and against the images' size it was drawn for."""
    record = replay.record or {}
    kind = (record.get("deformation") or {}).get("kind")
    saved = "diffeo" if kind == "diffeo" else "tps"  # a TPS records "random_tps"
    given = "kind" in getattr(args, "_given", {})
    if given and args.kind != saved:
        raise ValueError(
            f"--displacements {args.displacements} holds {saved} deformations, not "
            f"{args.kind}; drop --kind (the file says what it holds) or give a {args.kind} file."
        )
    drawn = record.get("image_size")
    if drawn is not None and tuple(drawn) != size:
        h, w = drawn
        raise ValueError(
            f"--displacements {args.displacements} was drawn for {w}×{h}-px images and these "
            f"are {size[1]}×{size[0]} px; pass --size {w} (or images of that size)."
        )
    return saved


def _spatial_settings(path, side: int) -> str | None:
    """The spatial preset recorded in the config.json beside ``path`` (spatial's
    per_image.csv); one sentence when it was made for images of another size."""
    record = _spatial_config(path)
    drawn = record.get("image_size")
    if drawn is not None and int(drawn) != side:
        raise ValueError(
            f"--transforms {path} holds the worst transforms of {drawn}-px images (its "
            f"config.json says so) and these are {side} px; pass --size {drawn}."
        )
    preset = record.get("preset") or {}
    return preset.get("name") if isinstance(preset, dict) else None


def _read_transforms(path, n: int):
    """(n, 3) angle, dx, dy from the worst_* columns of spatial's per_image.csv."""
    import torch

    from defstab.io.tables import read_csv

    try:
        rows = read_csv(path)
        values = [[float(r[k]) for k in ("worst_angle", "worst_dx", "worst_dy")] for r in rows]
    except FileNotFoundError:
        raise ValueError(f"--transforms {path} does not exist.") from None
    except (KeyError, ValueError, TypeError):
        raise ValueError(
            f"--transforms {path} is not the per_image.csv of 'defstab spatial' (it needs "
            "worst_angle, worst_dx and worst_dy columns)."
        ) from None
    if len(values) != n:
        raise ValueError(
            f"--transforms {path} holds {len(values)} transforms; give {len(values)} images, "
            "in order."
        )
    return torch.tensor(values, dtype=torch.float64)
