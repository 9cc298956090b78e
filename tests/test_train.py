"""The training engine: learns, resumes exactly, records one history row per checkpoint."""

import pytest
import torch

from defstab.data.splits import train_test_splits
from defstab.io.tables import read_csv
from defstab.metrics import filter_smoothness
from defstab.models import create_model
from defstab.train import TrainConfig, train
from defstab.train.config import checkpoint_steps


def tiny_setup(seed=0):
    train_data, test_data = train_test_splits("synthetic:1", seed=seed, per_class=30)
    model = create_model("vgg_cifar_maxpool", in_channels=1, width=0.125, seed=seed)
    cfg = TrainConfig(epochs=2, batch_size=30, lr=0.05, augment=False, probe_images=8, seed=seed)
    return model, train_data, test_data, cfg


def test_training_learns_the_synthetic_task(tmp_path):
    model, tr, te, cfg = tiny_setup()
    cfg.epochs = 4
    res = train(model, tr, te, cfg, out=tmp_path, quiet=True)
    losses = [h["train_loss"] for h in res.history[1:]]
    assert losses[-1] < 0.5 * losses[0]
    assert res.history[-1]["test_acc"] > 0.3  # chance is 0.1


def test_history_one_row_per_checkpoint(tmp_path):
    model, tr, te, cfg = tiny_setup()
    res = train(model, tr, te, cfg, out=tmp_path, quiet=True)
    rows = read_csv(tmp_path / "history.csv")
    files = sorted((tmp_path / "checkpoints").glob("step_*.safetensors"))
    assert (
        [int(r["step"]) for r in rows] == checkpoint_steps(20, 1, 10) == [0, 1, 2, 4, 8, 10, 16, 20]
    )
    assert len(files) == len(rows) == len(res.history)
    assert "sens:features.pool4" in rows[0] and "smooth:features.conv1_1.0" in rows[0]
    # step 0 is the paper's init of this very model, not any init: the value is the
    # project's filter_smoothness of a fresh model with the same seed, and it differs from
    # what PyTorch's default init (Kaiming uniform) gives the same layers
    fresh, *_ = tiny_setup()
    at_init = filter_smoothness(fresh)
    for name, value in at_init.items():
        assert float(rows[0][f"smooth:{name}"]) == pytest.approx(value, rel=1e-6)
    torch.manual_seed(0)
    torch_default = create_model("vgg_cifar_maxpool", in_channels=1, width=0.125)
    for m in torch_default.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.reset_parameters()
    default_tv = filter_smoothness(torch_default).values()
    paper_tv = at_init.values()
    assert sum(paper_tv) / len(paper_tv) - sum(default_tv) / len(default_tv) > 0.05


def test_resume_equals_uninterrupted(tmp_path):
    model, tr, te, cfg = tiny_setup()
    full = train(model, tr, te, cfg, out=tmp_path / "full", quiet=True)
    model2, *_ = tiny_setup()
    part = train(model2, tr, te, cfg, out=tmp_path / "part", quiet=True, stop_after_step=9)
    assert part.steps == 9  # interrupted after step 9; last checkpoint is step 8
    model3, *_ = tiny_setup()
    resumed = train(model3, tr, te, cfg, out=tmp_path / "part", quiet=True)
    for (k, a), b in zip(
        full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k
    assert read_csv(tmp_path / "full" / "history.csv") == read_csv(
        tmp_path / "part" / "history.csv"
    )


def test_same_seed_same_run():
    a = train(*tiny_setup(), quiet=True)
    b = train(*tiny_setup(), quiet=True)
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True)
    )


def test_bad_config():
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=-1)
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear")


def test_narrow_vgg_one_epoch_on_real_cifar(cifar10_jpeg):
    from defstab.data.normalize import make_normalize
    from defstab.data.sources import read_image_folder

    train_all = read_image_folder(cifar10_jpeg / "train")
    test_all = read_image_folder(cifar10_jpeg / "test")
    g = torch.Generator().manual_seed(0)
    tr = train_all.subset(torch.randperm(len(train_all), generator=g)[:3000])
    te = test_all.subset(torch.randperm(len(test_all), generator=g)[:500])
    tr.pixels = (tr.images(range(len(tr))) * 255).round().byte()
    te.pixels = (te.images(range(len(te))) * 255).round().byte()
    tr.paths = te.paths = None
    model = create_model("vgg_cifar_maxpool", width=0.25, seed=0)
    cfg = TrainConfig(epochs=1, batch_size=64, lr=0.05, probe_images=8)
    res = train(model, tr, te, cfg, preprocess=make_normalize("cifar10", 3), quiet=True)
    assert res.history[-1]["test_acc"] > 0.2  # chance is 0.1


def test_training_to_a_target_stops_at_the_first_epoch_that_reaches_it(tmp_path):
    import json

    from defstab.train.engine import evaluate

    model, tr, te, cfg = tiny_setup()
    cfg.epochs, cfg.target_train_acc = 40, 0.6  # 40 is the cap
    res = train(model, tr, te, cfg, out=tmp_path / "a", quiet=True)
    summary = json.loads((tmp_path / "a" / "train_summary.json").read_text())
    fits = [(h["epoch"], h["train_fit"]) for h in res.history if h["train_fit"] == h["train_fit"]]
    assert summary["reached_target"] and summary["finished"]
    assert summary["epochs_trained"] == fits[-1][0] < 40 and res.steps == 10 * fits[-1][0]
    # the first epoch end at or above the target is the last one trained; none before it
    assert fits[-1][1] >= 0.6 and all(f < 0.6 for _, f in fits[:-1])
    assert len(fits) == fits[-1][0]  # one fit per epoch end
    # the recorded fit is the eval-mode accuracy on the training set itself
    assert evaluate(res.model, tr) == pytest.approx(fits[-1][1])
    # a target it cannot reach within the cap: trains the whole cap and says so
    model, tr, te, cfg = tiny_setup()
    cfg.epochs, cfg.target_train_acc = 2, 1.0
    res = train(model, tr, te, cfg, out=tmp_path / "b", quiet=True)
    summary = json.loads((tmp_path / "b" / "train_summary.json").read_text())
    assert not summary["reached_target"] and summary["epochs_trained"] == 2 == summary["epoch_cap"]
    with pytest.raises(ValueError, match="target_train_acc"):
        TrainConfig(target_train_acc=1.5)
