"""The request of a deformation figure (``defstab deform``): random TPS (Ruderman et al.'s
Fig. 2), Petrini et al.'s diffeomorphisms, Engstrom et al.'s rotations + translations,
or saved ones — a measurement's deformations.pt, spatial's worst transforms."""

from __future__ import annotations

from dataclasses import dataclass

from defstab.requests.fields import option


@dataclass
class DeformRequest:
    """What ``defstab deform`` draws (every field is one of its options)."""

    images: tuple[str, ...] = option(
        (), positional=True, nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)"
    )
    kind: str = option(
        "tps",
        choices=("tps", "diffeo", "spatial"),
        help="tps (default; --grid, --max-disp), diffeo (Petrini: --displacement or "
        "--temperature, --cut), spatial (Engstrom: random within --spatial-preset, or "
        "--transforms FILE)",
    )
    grid: int = option(5, help="control points per side (default 5)")
    max_disp: float = option(10.0, help="C in pixels (default 10)")
    size: int = option(
        224, help="resize short side and centre-crop to this size (0 = keep; default 224)"
    )
    padding: str = option(
        "zeros", choices=("zeros", "border", "reflection"), help="outside the image"
    )
    seed: int = option(0, help="the random deformations' draw")
    displacements: str | None = option(
        metavar="FILE",
        help="draw saved displacements (N, k·k, 2) instead of random ones, e.g. the "
        "worst_deformations.pt of 'defstab measure --worst-case' (one row per IMAGE, in order)",
    )
    temperature: float | None = option(help="diffeo: T")
    displacement: float | None = option(
        metavar="PX", help="diffeo: typical displacement in pixels (default 1)"
    )
    cut: int = option(3, help="diffeo: the cut-off c (default 3)")
    spatial_preset: str | None = option(
        choices=("engstrom-cifar", "engstrom-imagenet"),
        help="spatial: the ranges and resampling (default by image size, as defstab spatial)",
    )
    transforms: str | None = option(
        metavar="FILE",
        help="spatial: the per_image.csv of 'defstab spatial' (its worst angle and shift per "
        "image; one row per IMAGE, in order)",
    )
