"""``defstab deform``: draw deformations of images — random TPS (the paper's Fig. 2),
Petrini et al.'s diffeomorphisms, Engstrom et al.'s rotations + translations — or saved
ones: a measurement's deformations.pt (TPS or diffeo), spatial's worst transforms.

The options are generated from :class:`~defstab.requests.deform.DeformRequest`; the
drawing is :func:`defstab.pipeline.deform.run_deform`.
"""

from __future__ import annotations

HELP = "draw TPS, diffeomorphism or rotation + translation deformations of images"


def add_parser(sub):
    from defstab.requests.deform import DeformRequest
    from defstab.requests.fields import add_options

    p = sub.add_parser("deform", help=HELP)
    add_options(p, DeformRequest)
    p.add_argument("-o", "--output", default="deformations.png", help="PNG, SVG or PDF")
    return p


def run(args) -> None:
    from defstab.cli.common import request_of
    from defstab.pipeline.deform import run_deform
    from defstab.requests.deform import DeformRequest

    outcome = run_deform(request_of(args, DeformRequest), out=args.output, given=args._given)
    print("\n".join(outcome.summary_lines()))
