"""Every JSON defstab writes is standard JSON: no NaN or Infinity, which strict parsers
(JavaScript's JSON.parse, jq, most other languages) refuse."""

import json
import math

import numpy as np
import torch

from defstab.io.atomic import strict_json, write_json
from defstab.io.checkpoint import read_checkpoint, save_checkpoint


def _refuse(constant):
    raise ValueError(f"not standard JSON: {constant}")


def test_write_json_replaces_non_finite_numbers_with_null(tmp_path):
    data = {"a": math.nan, "b": [1.0, math.inf, -math.inf], "c": (np.float32(np.nan), 2),
            "d": np.float64(0.5), "e": torch.tensor(3.0), "f": "NaN stays a string"}  # fmt: skip
    path = write_json(tmp_path / "x.json", data)
    back = json.loads(path.read_text(), parse_constant=_refuse)
    assert back == {"a": None, "b": [1.0, None, None], "c": [None, 2], "d": 0.5, "e": 3.0,
                    "f": "NaN stays a string"}  # fmt: skip
    assert strict_json(1.5) == 1.5 and strict_json(math.nan) is None


def test_checkpoint_metadata_is_standard_json(tmp_path):
    path = save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "c.safetensors",
                           {"step": 3, "test_acc": math.nan})  # fmt: skip
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        header = f.metadata()["defstab"]
    assert json.loads(header, parse_constant=_refuse) == {"step": 3, "test_acc": None}
    assert read_checkpoint(path)[1]["test_acc"] is None


def test_run_keys_refuse_non_finite_settings_and_keep_finite_keys():
    import hashlib
    import json

    import pytest

    from defstab.experiments.runs import _digest

    fields = {"width": 0.25, "seed": 3, "data": "synthetic"}
    # the key of finite settings is unchanged by the strict encoding (finished runs resume)
    legacy = hashlib.sha1(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()
    assert _digest(fields) == legacy[:10]
    with pytest.raises(ValueError, match="NaN or infinite"):
        _digest({"width": float("nan")})


def test_train_folder_compares_nan_settings_as_config_json_holds_them():
    from defstab.train.folder import differences

    assert differences({"train": {"lr": None}}, {"train": {"lr": float("nan")}}) == []
    assert differences({"train": {"lr": 0.1}}, {"train": {"lr": 0.2}}) == ["train.lr: 0.1 → 0.2"]
