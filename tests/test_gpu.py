"""The GPU paths against their CPU oracles: bf16 autocast training with channels-last,
TPS deformation and measurement on the GPU. Skipped without CUDA; benchmarks/gpu_check.sh
runs them (with the NCCL and benchmark checks) on a GPU machine."""

import contextlib
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


@contextlib.contextmanager
def syncs_are_errors_in_the_loop(monkeypatch, module, name):
    """``torch.cuda.set_sync_debug_mode("error")`` while ``module.name`` (the loop's chunk
    generator) is being iterated: a host sync inside the loop raises, the reads before and
    after it do not."""
    real = getattr(module, name)

    def guarded(*args, **kwargs):
        torch.cuda.set_sync_debug_mode("error")  # the loop body runs while this is suspended
        try:
            yield from real(*args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode("default")

    monkeypatch.setattr(module, name, guarded)
    yield


@pytest.mark.parametrize("normalizer", ["exact", "sampled"])
@pytest.mark.parametrize("images_on", ["cuda", "cpu"])
def test_measurement_loop_never_syncs_on_gpu(monkeypatch, normalizer, images_on):
    """No host synchronisation per chunk on a GPU, images on the card or copied from the
    host through pinned memory; the same numbers as the CPU to float32 rounding."""
    import defstab.measure.sensitivity as sensitivity

    model = create_model("vgg_cifar_maxpool", width=0.25, seed=0).eval()
    x = torch.rand(24, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    cpu = measure_sensitivity(model, x, batch_size=4, normalizer=normalizer,
                              generator=torch.Generator().manual_seed(2))  # fmt: skip
    with syncs_are_errors_in_the_loop(monkeypatch, sensitivity, "chunks_of"):
        gpu = measure_sensitivity(model.cuda(), x.to(images_on), batch_size=4,
                                  normalizer=normalizer,
                                  generator=torch.Generator().manual_seed(2))  # fmt: skip
    torch.testing.assert_close(gpu.mean, cpu.mean, rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(gpu.normalizer, cpu.normalizer, rtol=1e-3, atol=1e-5)


def test_host_tier_on_gpu_equals_device_tier(monkeypatch):
    """A zero device budget sends every layer to pinned host RAM on the side stream: the
    same numbers as keeping them on the card, and still no sync in the loop."""
    import defstab.measure.sensitivity as sensitivity

    model = create_model("vgg_cifar_maxpool", width=0.25, seed=0).eval().cuda()
    x = torch.rand(24, 3, 32, 32, generator=torch.Generator().manual_seed(1)).cuda()
    on_card = measure_sensitivity(model, x, batch_size=4, normalizer="exact",
                                  generator=torch.Generator().manual_seed(2))  # fmt: skip
    with syncs_are_errors_in_the_loop(monkeypatch, sensitivity, "chunks_of"):
        in_ram = measure_sensitivity(model, x, batch_size=4, normalizer="exact", device_bytes=0,
                                     generator=torch.Generator().manual_seed(2))  # fmt: skip
    assert sorted(in_ram.meta["host_layers"]) == sorted(on_card.layers)
    torch.testing.assert_close(in_ram.normalizer, on_card.normalizer, rtol=1e-6, atol=0)
    assert in_ram.per_image.equal(on_card.per_image)


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


def test_aps_circular_invariance_and_worst_shift_accuracy_on_gpu():
    from defstab.translate.robust import shift_robust_accuracy
    from defstab.translate.shifts import circular_shift, fourier_shift

    model = create_model("vgg_cifar_aps", width=0.25, padding="circular", seed=0).eval()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    shifts = torch.cartesian_prod(torch.arange(32), torch.arange(32))
    gpu = model.cuda()
    with torch.no_grad():
        logits = gpu(circular_shift(x.cuda(), shifts.cuda()).flatten(0, 1)).view(4, 1024, -1)
    assert (logits.argmax(-1) == logits[:, :1].argmax(-1)).all()
    assert torch.allclose(logits, logits[:, :1].expand_as(logits), atol=1e-4, rtol=1e-4)
    half = torch.tensor([[0.5, -1.5]])
    assert torch.allclose(fourier_shift(x.cuda(), half).cpu(), fourier_shift(x, half), atol=1e-5)
    labels = logits[:, 0].argmax(-1).cpu()
    on_gpu = shift_robust_accuracy(gpu, x, labels, "half", radius=8)
    on_cpu = shift_robust_accuracy(model.cpu(), x, labels, "half", radius=8)
    assert on_gpu["robust"].tolist() == on_cpu["robust"].tolist()


def test_imagenet_p_measures_on_gpu_equal_cpu():
    from defstab.translate.flips import sequence_measures
    from defstab.translate.sequences import get_sequence_preset, make_sequence

    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    frames, _ = make_sequence(x.cuda(), "rotate", get_sequence_preset("cifar-p"))
    cpu_frames, _ = make_sequence(x, "rotate", get_sequence_preset("cifar-p"))
    assert torch.allclose(frames.cpu(), cpu_frames, atol=1e-5)
    logits = torch.randn(3, 31, 10, generator=torch.Generator().manual_seed(5))
    a, b = sequence_measures(logits.cuda(), 2, False), sequence_measures(logits, 2, False)
    assert torch.allclose(a["fp"].cpu(), b["fp"]) and torch.allclose(a["t5d"].cpu(), b["t5d"])


def test_lie_derivative_on_gpu_equals_cpu():
    from defstab.measure.lie import lie_derivatives
    from defstab.models import create_model

    model = create_model("vgg_cifar_blurpool", width=0.25, seed=0).eval()
    images = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    layers = ["features.conv1_1", "features.pool2"]
    cpu = lie_derivatives(model, images, "translate,rotate,scale", layers)
    gpu = lie_derivatives(model.cuda(), images.cuda(), "translate,rotate,scale", layers)
    torch.testing.assert_close(gpu.relative, cpu.relative, rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(gpu.end_to_end_sq, cpu.end_to_end_sq, rtol=1e-3, atol=1e-10)
    torch.testing.assert_close(gpu.contributions, cpu.contributions, rtol=1e-2, atol=1e-10)
