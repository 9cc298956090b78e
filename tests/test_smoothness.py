"""Normalized total variation against a direct loop, and its invariants."""

import pytest
import torch
from torch import nn

from defstab.metrics import filter_smoothness, normalized_total_variation


def loop_ntv(w: torch.Tensor) -> float:
    """The paper's formula, written as loops over the spatial indices i, j."""
    co, ci, kh, kw = w.shape
    tv = 0.0
    for i in range(kh):
        for j in range(kw):
            if i + 1 < kh:
                tv += (w[:, :, i, j] - w[:, :, i + 1, j]).abs().sum().item()
            if j + 1 < kw:
                tv += (w[:, :, i, j] - w[:, :, i, j + 1]).abs().sum().item()
    return tv / w.abs().sum().item()


@pytest.mark.parametrize("shape", [(4, 3, 3, 3), (2, 5, 5, 5), (3, 1, 2, 4)])
def test_matches_loop(shape, gen):
    w = torch.randn(*shape, generator=gen, dtype=torch.float64)
    assert normalized_total_variation(w) == pytest.approx(loop_ntv(w), rel=1e-12)


def test_constant_filters_are_zero_and_scale_invariant(gen):
    w = torch.randn(6, 4, 1, 1, generator=gen).expand(6, 4, 3, 3).contiguous()
    assert normalized_total_variation(w) == 0.0
    v = torch.randn(6, 4, 3, 3, generator=gen)
    assert normalized_total_variation(3.5 * v) == pytest.approx(
        normalized_total_variation(v), rel=1e-6
    )


def test_filter_smoothness_order_and_errors():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 2, 5))
    values = filter_smoothness(model)
    assert list(values) == ["0", "3"]  # the 1×1 conv has no spatial extent
    with pytest.raises(ValueError, match="conv layer"):
        filter_smoothness(nn.Linear(3, 3))
    with pytest.raises(ValueError, match="all zeros"):
        normalized_total_variation(torch.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match="shape"):
        normalized_total_variation(torch.zeros(3, 3))
