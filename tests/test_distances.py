"""The normalizer's building blocks against numpy and brute force: the median by
selection, and Petrini's mean squared pair distance from the Gram matrix."""

import math

import numpy as np
import pytest
import torch

from defstab.measure.distances import mean_squared_pair_distance, median


@pytest.mark.parametrize("m", [1, 2, 3, 4, 11, 1000, 1001, 130816])
def test_median_equals_numpy_and_quantile_bit_for_bit(m):
    v = torch.rand(m, generator=torch.Generator().manual_seed(m), dtype=torch.float64)
    if m > 4:
        v[: m // 3] = v[m // 3]  # ties across the middle
    assert median(v) == float(torch.quantile(v, 0.5))
    assert median(v) == pytest.approx(float(np.median(v.numpy())), rel=0, abs=1e-15)
    assert median(v.float()) == pytest.approx(float(np.median(v.float().numpy())), rel=1e-7)


def test_median_of_nothing_and_of_nan():
    with pytest.raises(ValueError, match="no values"):
        median(torch.zeros(0))
    assert math.isnan(median(torch.tensor([1.0, float("nan"), 3.0])))


def test_mean_squared_pair_distance_equals_the_pairwise_loop():
    r = torch.randn(23, 57, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 2
    loop = [
        float((r[i] - r[j]).square().sum()) for i in range(len(r)) for j in range(i + 1, len(r))
    ]
    assert mean_squared_pair_distance(r @ r.T) == pytest.approx(np.mean(loop), rel=1e-12)
