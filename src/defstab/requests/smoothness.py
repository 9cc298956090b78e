"""The request of the filter-smoothness protocol (``defstab smoothness``): Ruderman et
al. 2018's normalized total variation of every conv layer's filters."""

from __future__ import annotations

from dataclasses import dataclass

from defstab.requests.fields import option


@dataclass
class SmoothnessRequest:
    """What ``defstab smoothness`` measures (every field is one of its options)."""

    in_channels: int | None = option(help="registry models: 1 for MNIST")
