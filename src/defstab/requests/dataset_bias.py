"""The request of the data-set bias statistics (``defstab dataset-bias``): where a data
set's objects are and how large (Azulay & Weiss 2019's photographer's bias), beside the
same boxes placed uniformly."""

from __future__ import annotations

from dataclasses import dataclass

from defstab.requests.fields import option


@dataclass
class DatasetBiasRequest:
    """What ``defstab dataset-bias`` computes (every field is one of its options)."""

    data: str = option(
        "",
        required=True,
        help="voc:DIR or ilsvrc:DIR (XML annotations, searched recursively) or coco:FILE.json "
        "(instances); without a prefix a .json file is COCO",
    )
    bins: int = option(20, help="histogram cells per axis (default 20)")
    seed: int = option(0, help="the uniform placement's draw")
