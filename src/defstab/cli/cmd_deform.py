"""``defstab deform``: draw random TPS deformations of images (the paper's Fig. 2)."""

from __future__ import annotations

HELP = "draw random thin-plate-spline deformations of images"  # one line in `defstab --help`


def add_parser(sub):
    p = sub.add_parser("deform", help=HELP)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
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
    p.add_argument("-o", "--output", default="deformations.png", help="PNG, SVG or PDF")
    return p


def run(args) -> None:
    import math

    import torch

    from defstab.deform import apply_tps, get_tps, random_tps
    from defstab.io.images import read_image
    from defstab.plotting.common import check_figure_path
    from defstab.plotting.deformation import deformation_figure

    out = check_figure_path(args.output)
    size = args.size or None
    images = [read_image(path, size) for path in args.images]
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) > 1:
        raise ValueError(f"images differ in size {sorted(shapes)}; pass --size to crop them alike.")
    batch = torch.stack(images)
    grid = args.grid
    if args.displacements:
        from defstab.io.replay import read_replay

        disp = read_replay(args.displacements, "--displacements").params
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
    names = [str(p).rsplit("/", 1)[-1] for p in args.images]
    deformation_figure(batch, disp, deformed, tps, out, names=names)
    print(f"wrote {out}")
