"""The GPU paths against their CPU oracles: bf16 autocast training with channels-last,
TPS deformation and measurement on the GPU. Skipped without CUDA; benchmarks/gpu_check.sh
runs them (with the NCCL and benchmark checks) on a GPU machine."""

import math

import pytest
import torch

from defstab.data.splits import train_test_splits
from defstab.deform import DeformationSpec, apply_tps, sample_displacements
from defstab.measure import measure_sensitivity
from defstab.models import create_model
from defstab.train import TrainConfig, train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_tps_on_gpu_equals_cpu():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 32, 32, generator=g)
    d = sample_displacements(16, 3, 2.0, g)
    cpu = apply_tps(x, d, 3)
    gpu = apply_tps(x.cuda(), d.cuda(), 3).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-5)


def test_measurement_on_gpu_equals_cpu():
    model = create_model("vgg_cifar_maxpool", width=0.25, seed=0).eval()
    x = torch.rand(12, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    spec = DeformationSpec.paper(32)
    a = measure_sensitivity(model, x, spec, generator=torch.Generator().manual_seed(2))
    b = measure_sensitivity(
        model.cuda(), x.cuda(), spec, generator=torch.Generator().manual_seed(2)
    )
    assert torch.allclose(torch.as_tensor(a.mean), torch.as_tensor(b.mean), rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_on_gpu_learns_in_both_precisions(precision):
    train_data, test_data = train_test_splits("synthetic:1", seed=0, per_class=60)
    cfg = TrainConfig(epochs=4, batch_size=50, lr=0.05, augment=False, probe_images=8,
                      device="cuda", precision=precision)  # fmt: skip
    model = create_model("vgg_cifar_maxpool", width=0.25, seed=0, in_channels=1)
    result = train(model, train_data, test_data, cfg, quiet=True)
    last = result.history[-1]
    assert math.isfinite(last["train_loss"]) and last["test_acc"] > 0.5, last
    assert next(result.model.parameters()).is_cuda
