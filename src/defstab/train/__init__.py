"""Training with checkpoints and a history of stability and smoothness."""

from defstab.train.config import TrainConfig, default_config
from defstab.train.engine import TrainResult, evaluate, train

__all__ = ["TrainConfig", "TrainResult", "default_config", "evaluate", "train"]
