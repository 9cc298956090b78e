"""Measures on tensors: distances between representations, filter smoothness."""

from defstab.metrics.smoothness import filter_smoothness, normalized_total_variation

__all__ = ["filter_smoothness", "normalized_total_variation"]
