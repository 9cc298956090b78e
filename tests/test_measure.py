"""measure_sensitivity against hand-computed layers, brute-force medians and invariants."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from defstab.deform import DeformationSpec, apply_tps
from defstab.measure import measure_sensitivity
from defstab.measure.distances import paired_distance, pairwise_from_gram
from defstab.models import create_model


def hand_net() -> nn.Sequential:
    """scale(−2) → ReLU → 2×2 average pool → ReLU, every output computable by hand."""
    conv = nn.Conv2d(1, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(-2.0)
    return nn.Sequential(conv, nn.ReLU(), nn.AvgPool2d(2), nn.ReLU())


def np_cosine(a, b):
    return 1 - (a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))


def brute_force(reps_x, reps_tx):
    """Normalized cosine distance per image from flattened arrays (N, F)."""
    n = len(reps_x)
    pairs = [np_cosine(reps_x[i], reps_x[j]) for i, j in itertools.combinations(range(n), 2)]
    norm = np.median(pairs)
    return np.array([np_cosine(reps_x[i], reps_tx[i]) for i in range(n)]) / norm, norm


@pytest.fixture
def signed_images(gen):
    return torch.randn(12, 1, 16, 16, generator=gen)


def test_hand_weighted_network_layer_by_layer(signed_images):
    x = signed_images
    net = hand_net()
    gen = torch.Generator().manual_seed(0)
    res = measure_sensitivity(
        net,
        x,
        DeformationSpec(3, 2.0),
        layers=["0", "1", "2", "3"],
        generator=gen,
        noise_control=False,
    )
    tx = apply_tps(x, res.deformation_params, 3).double().numpy()
    xs = x.double().numpy()

    def by_hand(v):  # the four layers, written out
        s = -2.0 * v
        r = np.maximum(s, 0)
        p = r.reshape(-1, 1, 8, 2, 8, 2).mean(axis=(3, 5))
        return [v, s, r, p, np.maximum(p, 0)]

    hx, htx = by_hand(xs), by_hand(tx)
    assert res.layers == ["input", "0", "1", "2", "3"]
    for i in range(5):
        expected, norm = brute_force(hx[i].reshape(12, -1), htx[i].reshape(12, -1))
        np.testing.assert_allclose(res.per_image[i].numpy(), expected, rtol=1e-5, atol=1e-7)
        assert res.normalizer[i].item() == pytest.approx(norm, rel=1e-6)
    # cosine is blind to the scale −2 up to sign: layer 1 repeats the input exactly
    torch.testing.assert_close(res.per_image[1], res.per_image[0], rtol=1e-6, atol=1e-9)


def test_distance_to_itself_is_zero(gen):
    a = torch.randn(5, 40, generator=gen)
    assert torch.equal(paired_distance(a, a.clone(), "cosine"), torch.zeros(5, dtype=torch.float64))
    assert torch.equal(
        paired_distance(a, a.clone(), "euclidean"), torch.zeros(5, dtype=torch.float64)
    )
    z = torch.zeros(2, 40)
    d = paired_distance(torch.stack([z[0], a[0]]), torch.stack([z[1], z[1]]), "cosine")
    assert d.tolist() == [0.0, 1.0]


def test_zero_deformation_gives_zero_everywhere(gen):
    model = create_model("vgg_cifar_subsample", width=0.25, seed=0)
    x = torch.rand(6, 3, 32, 32, generator=gen)
    res = measure_sensitivity(model, x, torch.zeros(6, 9, 2), noise_control=True, generator=gen)
    assert torch.equal(res.per_image, torch.zeros_like(res.per_image))
    assert torch.equal(res.noise_per_image, torch.zeros_like(res.noise_per_image))  # ‖η‖ = 0
    assert len(res.layers) == 13


def test_normalizer_is_brute_force_median_euclidean_and_cosine(gen):
    r = torch.randn(9, 30, generator=gen, dtype=torch.float64)
    g = r @ r.T
    for dist, f in [("cosine", np_cosine), ("euclidean", lambda a, b: np.linalg.norm(a - b))]:
        got = pairwise_from_gram(g, dist).numpy()
        rn = r.numpy()
        want = [f(rn[i], rn[j]) for i, j in itertools.combinations(range(9), 2)]
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_euclidean_option_matches_brute_force(signed_images):
    x = signed_images
    res = measure_sensitivity(
        nn.Sequential(nn.Identity()),
        x,
        DeformationSpec(3, 1.5),
        layers="0",
        distance="euclidean",
        generator=torch.Generator().manual_seed(1),
        noise_control=False,
    )
    tx = apply_tps(x, res.deformation_params, 3).double().numpy().reshape(12, -1)
    xs = x.double().numpy().reshape(12, -1)
    pairs = [np.linalg.norm(xs[i] - xs[j]) for i, j in itertools.combinations(range(12), 2)]
    expected = np.linalg.norm(xs - tx, axis=1) / np.median(pairs)
    np.testing.assert_allclose(res.per_image[1].numpy(), expected, rtol=1e-5)


def test_batch_size_and_spill_do_not_change_results(gen):
    model = create_model("vgg_cifar_maxpool", width=0.25, seed=1)
    x = torch.rand(10, 3, 32, 32, generator=gen)
    disp = torch.rand(10, 9, 2, generator=gen) * 4 - 2
    base = measure_sensitivity(
        model, x, disp, batch_size=10, generator=torch.Generator().manual_seed(0)
    )
    for kwargs in [dict(batch_size=3), dict(batch_size=1), dict(batch_size=4, store_bytes=0)]:
        other = measure_sensitivity(
            model, x, disp, generator=torch.Generator().manual_seed(0), **kwargs
        )
        torch.testing.assert_close(other.per_image, base.per_image, rtol=2e-4, atol=1e-6)
        torch.testing.assert_close(other.normalizer, base.normalizer, rtol=1e-5, atol=1e-9)
    spilled = measure_sensitivity(
        model, x, disp, store_bytes=0, generator=torch.Generator().manual_seed(0)
    )
    assert spilled.meta["spilled_layers"]


def test_random_deformation_and_noise_do_not_depend_on_chunking():
    """Small odd-sized images, deformations AND noise drawn by the measurement itself:
    every value is the same whatever the batch size (the noise was once drawn per chunk,
    0.078 apart between batch sizes 10 and 3)."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3))
    x = torch.rand(10, 3, 7, 7, generator=torch.Generator().manual_seed(5))
    spec = DeformationSpec(grid=3, max_disp=1.5)

    def run(batch_size):
        return measure_sensitivity(
            net, x, spec, generator=torch.Generator().manual_seed(0), batch_size=batch_size
        )

    base = run(10)
    for b in (3, 1):
        other = run(b)
        torch.testing.assert_close(other.deformation_params, base.deformation_params)
        torch.testing.assert_close(other.per_image, base.per_image, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(
            other.noise_per_image, base.noise_per_image, rtol=1e-5, atol=1e-7
        )
    # the documented draw order: all deformations, then all noise images, from one generator
    g = torch.Generator().manual_seed(0)
    disp = spec.sample(10, g)
    eta = torch.randn(x.shape, generator=g)
    tx = apply_tps(x, disp, 3)
    eta = eta * ((tx - x).flatten(1).norm(dim=1) / eta.flatten(1).norm(dim=1)).view(-1, 1, 1, 1)
    xs, ns = x.double().numpy().reshape(10, -1), (x + eta).double().numpy().reshape(10, -1)
    pairs = [np_cosine(xs[i], xs[j]) for i, j in itertools.combinations(range(10), 2)]
    expected = [np_cosine(xs[i], ns[i]) / np.median(pairs) for i in range(10)]
    np.testing.assert_allclose(base.noise_per_image[0].numpy(), expected, rtol=1e-4)
    assert base.meta["deformation"] == spec.record()  # recorded whole, max_disp included


def test_model_modes_are_restored(gen):
    model = create_model("vgg_cifar_strided_relu", width=0.25)
    model.train()
    model.features.conv2_1.eval()  # a mixed state must come back as it was
    before = {name: m.training for name, m in model.named_modules()}
    bn_before = model.features.conv1_1[1].running_mean.clone()
    measure_sensitivity(
        model, torch.rand(4, 3, 32, 32, generator=gen), DeformationSpec(), generator=gen
    )
    assert {name: m.training for name, m in model.named_modules()} == before
    assert torch.equal(model.features.conv1_1[1].running_mean, bn_before)  # ran in eval mode


def test_same_seed_same_result_and_replay(gen):
    model = create_model("vgg_cifar_avgpool", width=0.25)
    x = torch.rand(6, 3, 32, 32, generator=gen)
    a = measure_sensitivity(model, x, DeformationSpec(), generator=torch.Generator().manual_seed(3))
    b = measure_sensitivity(model, x, DeformationSpec(), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.per_image, b.per_image)
    replay = measure_sensitivity(model, x, a.deformation_params, noise_control=False)
    torch.testing.assert_close(replay.per_image, a.per_image)


def test_input_layer_is_model_independent(gen):
    x = torch.rand(5, 3, 32, 32, generator=gen)
    disp = torch.rand(5, 9, 2, generator=gen) * 2
    a = measure_sensitivity(
        create_model("vgg_cifar_maxpool", width=0.25), x, disp, noise_control=False
    )
    b = measure_sensitivity(
        create_model("vgg_cifar_strided", width=0.25), x, disp, noise_control=False
    )
    torch.testing.assert_close(a.per_image[0], b.per_image[0])
    assert not torch.allclose(a.per_image[-1], b.per_image[-1])


def test_torchvision_resnet18_named_layers(gen):
    tvm = pytest.importorskip("torchvision.models")
    from torchvision.models.feature_extraction import create_feature_extractor

    model = tvm.resnet18(weights=None, num_classes=10)
    x = torch.rand(4, 3, 64, 64, generator=gen)
    layers = ["layer2.0.conv1", "layer1", "maxpool"]
    res = measure_sensitivity(
        model, x, DeformationSpec(3, 3.0), layers=layers, generator=gen, noise_control=False
    )
    assert res.layers == ["input", "maxpool", "layer1", "layer2.0.conv1"]
    # oracle: torchvision's own feature extractor on x and τx
    tx = apply_tps(x, res.deformation_params, 3)
    model.eval()
    fx = create_feature_extractor(model, {"layer1": "l1"})
    with torch.no_grad():
        a, b = fx(x)["l1"].flatten(1).double(), fx(tx)["l1"].flatten(1).double()
    expected, _ = brute_force(a.numpy(), b.numpy())
    np.testing.assert_allclose(res.per_image[2].numpy(), expected, rtol=1e-4)
    default = measure_sensitivity(
        model, x, DeformationSpec(3, 3.0), generator=gen, noise_control=False
    )
    assert "conv1" in default.layers and "maxpool" in default.layers and len(default.layers) > 15


def test_noise_control_has_matched_norm(gen):
    x = torch.rand(6, 3, 32, 32, generator=gen)
    res = measure_sensitivity(
        nn.Sequential(nn.Identity()),
        x,
        DeformationSpec(3, 2.0),
        layers="0",
        distance="euclidean",
        generator=gen,
    )
    # at the input, the Euclidean noise distance equals the deformation distance per image
    torch.testing.assert_close(res.noise_per_image[0], res.per_image[0], rtol=1e-5, atol=1e-8)
    assert res.relative_stability[0].item() == pytest.approx(1.0, rel=1e-5)
    assert res.mean_distance_ratio[0].item() == pytest.approx(1.0, rel=1e-5)


def test_relative_stability_is_petrini_r_f_by_a_loop():
    """Petrini et al. 2021's D_f, G_f, R_f recomputed image by image from their formulas:
    squared Euclidean distances, η Gaussian in the network's input space (after the
    normalisation) with ‖η‖ = ‖τx − x‖ there, per image."""
    gen = torch.Generator().manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5)
    )
    x = torch.rand(6, 3, 8, 8, generator=gen)
    disp = torch.randn(6, 9, 2, generator=gen)
    mean, std = torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.3, 0.25])

    def prep(t):
        return (t - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)

    res = measure_sensitivity(
        model, x, disp, layers="1,3", preprocess=prep, generator=torch.Generator().manual_seed(9)
    )
    eta = torch.randn(x.shape, generator=torch.Generator().manual_seed(9))  # the only draw
    tx = apply_tps(x, disp, 3)
    feats = {"input": lambda t: t, "1": lambda t: model[1](model[0](t)), "3": model}
    with torch.no_grad():
        for li, name in enumerate(res.layers):
            f = feats[name]
            d_sq, g_sq, reps = [], [], []
            for i in range(6):
                xi, ti = prep(x[i : i + 1]), prep(tx[i : i + 1])
                noise = eta[i : i + 1] * (ti - xi).norm() / eta[i : i + 1].norm()
                d_sq.append(float((f(ti) - f(xi)).double().norm() ** 2))
                g_sq.append(float((f(xi + noise) - f(xi)).double().norm() ** 2))
                reps.append(f(xi).double().flatten())
            pairs = [
                float((reps[i] - reps[j]).norm() ** 2)
                for i, j in itertools.combinations(range(6), 2)
            ]
            r_f = np.mean(d_sq) / np.mean(g_sq)
            assert res.relative_stability[li].item() == pytest.approx(r_f, rel=1e-4), name
            assert res.deformation_stability[li].item() == pytest.approx(
                np.mean(d_sq) / np.mean(pairs), rel=1e-4
            )
            assert res.noise_stability[li].item() == pytest.approx(
                np.mean(g_sq) / np.mean(pairs), rel=1e-4
            )
    # the input layer: ‖η‖ = ‖τx − x‖ exactly, so R_f = 1 there
    assert res.relative_stability[0].item() == pytest.approx(1.0, rel=1e-5)
    # and it is not the ratio of mean cosine distances that 0.1.0 reported under its name
    assert not torch.allclose(res.relative_stability[1:], res.mean_distance_ratio[1:], rtol=0.05)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(layers=["features.conv1_9"]), "Did you mean"),
        (dict(layers=""), "empty"),
        (dict(distance="manhattan"), "distance"),
        (dict(deformation=torch.zeros(4, 8, 2)), "k·k"),
        (dict(deformation=torch.zeros(3, 9, 2)), "3 deformations for 4"),
        (dict(deformation="tps"), "DeformationSpec"),
        (dict(batch_size=0), "batch_size"),
    ],
)
def test_bad_arguments(kwargs, match):
    model = create_model("vgg_cifar_maxpool", width=0.25)
    kwargs.setdefault("deformation", DeformationSpec())
    with pytest.raises(ValueError, match=match):
        measure_sensitivity(model, torch.rand(4, 3, 32, 32), **kwargs)


def test_bad_images():
    model = create_model("vgg_cifar_maxpool", width=0.25)
    with pytest.raises(ValueError, match="at least 2"):
        measure_sensitivity(model, torch.rand(1, 3, 32, 32), DeformationSpec())
    x = torch.rand(3, 3, 32, 32)
    x[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        measure_sensitivity(model, x, DeformationSpec())


def test_result_tables(tmp_path, gen):
    res = measure_sensitivity(
        create_model("vgg_cifar_maxpool", width=0.25),
        torch.rand(4, 3, 32, 32, generator=gen),
        DeformationSpec(),
        generator=gen,
    )
    res.to_csv(tmp_path / "s.csv")
    res.to_json(tmp_path / "s.json")
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0].startswith("layer_index,layer,mean,std,n_images") and len(lines) == 14
    df = pytest.importorskip("pandas").read_csv(tmp_path / "s.csv")
    np.testing.assert_allclose(df["mean"].to_numpy(), res.mean.numpy(), rtol=1e-6)


def test_untrained_maxpool_less_sensitive_than_subsample_on_cifar(cifar10_jpeg):
    """The paper's Fig. 3c at initialisation, on real CIFAR-10 test images."""
    from defstab.data.sources import read_image_folder

    ds = read_image_folder(cifar10_jpeg / "test")
    x, _, _ = ds.sample(64, torch.Generator().manual_seed(0))
    last = {}
    for kind in ("maxpool", "subsample"):
        model = create_model(f"vgg_cifar_{kind}", seed=0)
        res = measure_sensitivity(
            model,
            x,
            DeformationSpec(3, 2.0),
            generator=torch.Generator().manual_seed(0),
            noise_control=False,
        )
        last[kind] = res.mean[-1].item()
    assert last["maxpool"] < last["subsample"], last


def test_store_spill_round_trip(gen):
    from defstab.measure.store import RepresentationStore

    n = 7
    feats = {"a": 5, "b": 70_000, "c": 3}  # "b" spans two slabs
    data = {k: torch.randn(n, f, generator=gen) for k, f in feats.items()}
    with RepresentationStore(n, feats, budget_bytes=n * 8 * 4) as store:
        assert store.spilled == ["b"]  # smallest layers stay in RAM
        for start in range(0, n, 3):
            for k in feats:
                store.put(k, start, data[k][start : start + 3])
        for k in feats:
            expected = data[k].double() @ data[k].double().T
            torch.testing.assert_close(store.gram(k), expected, rtol=1e-5, atol=1e-3)


def test_old_random_tps_name_still_works_with_a_warning():
    import defstab.measure as m

    with pytest.warns(DeprecationWarning, match="DeformationSpec"):
        old = m.RandomTPS(3, 2.0)
    assert old == DeformationSpec(3, 2.0)
