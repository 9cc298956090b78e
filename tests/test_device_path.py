"""The measurement's device-resident loop: no host synchronisation per chunk, the same
numbers as the host-synchronising loop it replaced, and its memory tiers (device, host RAM,
disk) giving the same numbers whichever holds the representations.

The sync counts are taken on the CPU (tests/sync_guard.py): a value read on the host or a
value-dependent operation counted here is a wait for the device on a GPU, where
tests/test_gpu.py runs the same loop under ``torch.cuda.set_sync_debug_mode("error")``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from defstab.data.sources import ImageDataset
from defstab.data.stream import DatasetImages
from defstab.deform import DeformationSpec
from defstab.measure import measure_sensitivity
from defstab.models import create_model
from fixtures.make_measure_reference import cases, summary
from sync_guard import count_host_syncs

REFERENCE = Path(__file__).parent / "fixtures" / "measure_reference.json"


@pytest.fixture(scope="module")
def model():
    return create_model("vgg_cifar_maxpool", width=0.125, seed=0).eval()


def _flat(v):
    if isinstance(v, list):
        return [y for x in v for y in _flat(x)]
    return [v]


@pytest.mark.parametrize("case", [c[0] for c in cases()])
def test_numbers_equal_the_host_synchronising_loop(case):
    """Every fixed case of tests/fixtures/measure_reference.json (made by the loop of commit
    f048413, which read every distance back to the host per layer per chunk) to 1e-6."""
    name, model, x, kw = next(c for c in cases() if c[0] == case)
    got = summary(measure_sensitivity(model, x, generator=torch.Generator().manual_seed(1), **kw))
    want = json.loads(REFERENCE.read_text())[name]
    assert set(got) == set(want)
    for key, ref in want.items():
        if ref is None:
            assert got[key] is None, key
            continue
        a, b = _flat(got[key]), _flat(ref)
        assert len(a) == len(b), key
        for p, q in zip(a, b, strict=True):
            if isinstance(q, float) and math.isnan(q):
                assert math.isnan(p), key
            else:
                assert p == pytest.approx(q, rel=1e-6, abs=1e-9), key


def _syncs(model, n, batch, **kw):
    x = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(n))
    with count_host_syncs() as counts:
        measure_sensitivity(model, x, generator=torch.Generator().manual_seed(1), **kw,
                            batch_size=batch)  # fmt: skip
    return counts


@pytest.mark.parametrize(
    "kw",
    [
        {"normalizer": "exact"},
        {"normalizer": "sampled"},
        {"normalizer": "exact", "noise_control": False, "distance": "euclidean"},
        {"normalizer": "exact", "deformation": DeformationSpec.diffeo(32, temperature=0.01)},
        {"normalizer": "exact", "aggregate": "median"},
    ],
    ids=["exact", "sampled", "euclidean-no-noise", "diffeo", "median"],
)
def test_no_host_synchronisation_per_chunk(model, kw):
    """4 chunks and 12 chunks make the same number of host reads: none is in the loop (the
    host-synchronising loop made 98 per chunk here, 153 in sampled mode)."""
    few = _syncs(model, 16, 4, **kw)
    many = _syncs(model, 48, 4, **kw)
    assert many == few, f"host reads grow with the chunks: {dict(few)} → {dict(many)}"
    assert sum(few.values()) < 200  # after the loop: a few per layer (13 layers)


def test_the_guard_sees_a_read_added_to_the_loop(model, monkeypatch):
    """A ``.item()`` per chunk slipped into the loop is counted (the guard can fail)."""
    import defstab.measure.sensitivity as sensitivity

    real = sensitivity.to_device

    def reading(t, device, dtype=None):
        t.sum().item()
        return real(t, device, dtype)

    monkeypatch.setattr(sensitivity, "to_device", reading)
    assert _syncs(model, 48, 4, normalizer="exact") != _syncs(model, 16, 4, normalizer="exact")


def test_in_memory_dataset_streams_without_host_reads(model):
    """A data set's pixels in memory (uint8, as CIFAR-10 is read) go chunk by chunk with no
    read of their positions on the host."""
    g = torch.Generator().manual_seed(0)

    def run(n):
        data = ImageDataset(
            labels=torch.zeros(n, dtype=torch.long),
            classes=["a"],
            name="t",
            pixels=torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
        )
        with count_host_syncs() as counts:
            measure_sensitivity(model, DatasetImages(data, torch.arange(n)), batch_size=4,
                                generator=torch.Generator().manual_seed(1))  # fmt: skip
        return counts

    assert run(48) == run(16)


def test_tiers_give_the_same_numbers(model, tmp_path):
    """Representations on the device, in host RAM beyond a zero device budget, and on disk
    beyond a tiny RAM budget: the same numbers, and the result says where they were."""
    x = torch.rand(20, 3, 32, 32, generator=torch.Generator().manual_seed(3))

    def run(**kw):
        return measure_sensitivity(model, x, generator=torch.Generator().manual_seed(1),
                                   batch_size=6, normalizer="exact", **kw)  # fmt: skip

    plain = run()
    host = run(device_bytes=0)
    disk = run(device_bytes=0, store_bytes=20 * 4 * 600, spill_dir=tmp_path)
    some = run(device_bytes=20 * 4 * 3000)  # the smallest layers on the device, the rest in RAM
    assert plain.meta["host_layers"] == [] and plain.meta["spilled_layers"] == []
    assert sorted(host.meta["host_layers"]) == sorted(plain.layers)
    assert disk.meta["spilled_layers"] and disk.meta["host_layers"]
    assert 0 < len(some.meta["host_layers"]) < len(plain.layers)
    for other in (host, disk, some):
        torch.testing.assert_close(other.normalizer, plain.normalizer, rtol=1e-6, atol=0)
        torch.testing.assert_close(other.pairs_sq, plain.pairs_sq, rtol=1e-6, atol=0)
        assert other.per_image.equal(plain.per_image)


def test_device_budget_refuses_a_negative_number(model):
    with pytest.raises(ValueError, match="device memory budget"):
        measure_sensitivity(model, torch.rand(4, 3, 32, 32), device_bytes=-1)


def test_a_nonfinite_streamed_image_is_refused_after_the_loop(model):
    """A stream's images are checked on the device (one flag, read once at the end)."""
    pixels = torch.rand(8, 3, 32, 32)
    pixels[5, 0, 3, 3] = math.nan
    data = ImageDataset(torch.zeros(8, dtype=torch.long), ["a"], "t", pixels=pixels)
    with pytest.raises(ValueError, match="NaN or infinite"):
        measure_sensitivity(model, DatasetImages(data, torch.arange(8)), batch_size=4)
