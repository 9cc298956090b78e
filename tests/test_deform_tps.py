"""The thin-plate spline against scipy's RBFInterpolator (the oracle) and invariants."""

import numpy as np
import pytest
import torch

from defstab.deform import ThinPlateSpline, sample_displacements

scipy_interp = pytest.importorskip("scipy.interpolate")


def scipy_tps_field(tps: ThinPlateSpline, disp: np.ndarray) -> np.ndarray:
    """(H, W, 2) field from scipy's TPS (kernel r² log r, degree-1 polynomial)."""
    h, w = tps.size
    rbf = scipy_interp.RBFInterpolator(
        tps.control_points.numpy(), disp, kernel="thin_plate_spline", degree=1
    )
    yy, xx = np.mgrid[0:h, 0:w]
    pts = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float64)
    return rbf(pts).reshape(h, w, 2)


@pytest.mark.parametrize(
    "size,grid", [((32, 32), 3), ((224, 224), 5), ((24, 40), 3), ((50, 31), 4), ((64, 48), 2)]
)
def test_field_matches_scipy(size, grid, gen):
    tps = ThinPlateSpline(size, grid)
    disp = sample_displacements(3, grid, 10.0, generator=gen).double()
    field = tps.field(disp)
    for i in range(3):
        expected = scipy_tps_field(tps, disp[i].numpy())
        np.testing.assert_allclose(field[i].numpy(), expected, atol=1e-4, rtol=0)


def test_control_points_layout():
    tps = ThinPlateSpline((20, 30), grid=3)
    cp = tps.control_points
    assert cp.shape == (9, 2)
    assert cp[0].tolist() == [0.0, 0.0]
    assert cp[2].tolist() == [29.0, 0.0]  # row-major: x varies fastest
    assert cp[3].tolist() == [0.0, 9.5]
    assert cp[-1].tolist() == [29.0, 19.0]


def test_exact_at_control_points(gen):
    disp = sample_displacements(2, 4, 3.0, generator=gen).double()
    # control points on integer pixels (steps 10 and 15 px): the field equals disp there
    tps2 = ThinPlateSpline((31, 46), grid=4)
    field2 = tps2.field(disp)
    idx = tps2.control_points.long()
    at_cp = field2[:, idx[:, 1], idx[:, 0]]
    torch.testing.assert_close(at_cp, disp, atol=1e-9, rtol=0)
    # control points between pixels ((33 − 1) / 3 is not an integer): every pixel against
    # scipy, and scipy's interpolant evaluated at the control points returns disp exactly
    tps = ThinPlateSpline((33, 45), grid=4)
    field = tps.field(disp)
    for i in range(2):
        np.testing.assert_allclose(
            field[i].numpy(), scipy_tps_field(tps, disp[i].numpy()), atol=1e-6, rtol=0
        )
    rbf = scipy_interp.RBFInterpolator(
        tps.control_points.numpy(), disp[0].numpy(), kernel="thin_plate_spline", degree=1
    )
    np.testing.assert_allclose(rbf(tps.control_points.numpy()), disp[0].numpy(), atol=1e-9)


def test_linear_and_affine_reproduction(gen):
    """TPS reproduces affine displacement exactly (the polynomial part) and is linear."""
    tps = ThinPlateSpline((40, 30), grid=3)
    cp = tps.control_points
    a = torch.tensor([[0.02, -0.01], [0.03, 0.015]], dtype=torch.float64)
    disp = (cp @ a.T + torch.tensor([1.5, -0.5], dtype=torch.float64)).unsqueeze(0)
    field = tps.field(disp)[0]
    yy, xx = torch.meshgrid(torch.arange(40.0), torch.arange(30.0), indexing="ij")
    p = torch.stack([xx, yy], -1).double()
    torch.testing.assert_close(
        field, p @ a.T + torch.tensor([1.5, -0.5]).double(), atol=1e-9, rtol=0
    )
    d1 = sample_displacements(1, 3, 2.0, generator=gen).double()
    d2 = sample_displacements(1, 3, 2.0, generator=gen).double()
    torch.testing.assert_close(tps.field(2 * d1 - d2), 2 * tps.field(d1) - tps.field(d2))


def test_batched_equals_looped(gen):
    tps = ThinPlateSpline((32, 32), 3)
    disp = sample_displacements(5, 3, 2.0, generator=gen)
    batched = tps.field(disp)
    looped = torch.cat([tps.field(disp[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(batched, looped)


def test_gradcheck_field(gen):
    tps = ThinPlateSpline((8, 7), 3)
    disp = sample_displacements(2, 3, 1.0, generator=gen).double().requires_grad_()
    assert torch.autograd.gradcheck(tps.field, (disp,))


def test_same_seed_same_displacements():
    a = sample_displacements(4, 5, 10.0, generator=torch.Generator().manual_seed(7))
    b = sample_displacements(4, 5, 10.0, generator=torch.Generator().manual_seed(7))
    c = sample_displacements(4, 5, 10.0, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.abs().max() <= 10.0 and a.abs().max() > 5.0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(size=(32, 32), grid=1), "grid"),
        (dict(size=(32,), grid=3), "size"),
        (dict(size=(1, 32), grid=3), "size"),
        (dict(size=(32, 32), grid=2.5), "grid"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ThinPlateSpline(**kwargs)


def test_bad_displacements():
    tps = ThinPlateSpline((16, 16), 3)
    with pytest.raises(ValueError, match="shape"):
        tps.field(torch.zeros(2, 8, 2))
    with pytest.raises(ValueError, match="shape"):
        tps.field(torch.zeros(9, 2))
    bad = torch.zeros(1, 9, 2)
    bad[0, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        tps.field(bad)


@pytest.mark.parametrize(
    "args,match",
    [
        ((0, 3, 1.0), "n must"),
        ((2, 1, 1.0), "grid"),
        ((2, 3, -1.0), "max_disp"),
        ((2, 3, float("inf")), "max_disp"),
        ((2, 3, float("nan")), "max_disp"),
    ],
)
def test_bad_sampling_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        sample_displacements(*args)


def test_module_wrapper_matches_the_functions_and_replays():
    from defstab.deform import DeformationSpec, RandomThinPlateSpline, apply_tps, random_tps

    x = torch.rand(5, 2, 17, 23, generator=torch.Generator().manual_seed(1))
    module = RandomThinPlateSpline(grid=4, max_disp=3.0, padding="border")
    y = module(x, generator=torch.Generator().manual_seed(2))
    ref, disp = random_tps(x, 4, 3.0, torch.Generator().manual_seed(2), padding="border")
    assert torch.equal(y, ref) and torch.equal(module.last_params["displacements"], disp)
    other = torch.rand(5, 2, 17, 23)
    replay = module(other, params=module.last_params)
    torch.testing.assert_close(replay, apply_tps(other, disp, 4, "border"))
    assert module.spec == DeformationSpec(4, 3.0, "border")
    assert RandomThinPlateSpline.from_spec(module.spec).spec == module.spec
    with pytest.raises(ValueError, match="padding"):
        RandomThinPlateSpline(padding="wrap")
