"""The Lie derivative (Gruver et al. 2023): the warp against grid_sample, every derivative
against central finite differences of the finite warp, zeros and a value derived by hand,
and the layer contributions against explicit Jacobians and against their probe estimator."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from defstab.measure.lie import lie_derivatives
from defstab.measure.lie_actions import (
    TRANSFORMS,
    action_tangent,
    affine_matrix,
    parse_transforms,
    warp,
    warp_tangent,
)

H = 1e-6  # finite-difference step (float64)


def _images(n=3, c=2, h=9, w=11, seed=0):
    return torch.rand(
        n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )


def _fd_equivariance(f, x, transform, h=H):
    """Central difference of t ↦ g_{−t} f(g_t x), with g the finite warp."""
    ahead = warp(f(warp(x, transform, h)), transform, -h)
    behind = warp(f(warp(x, transform, -h)), transform, h)
    return (ahead - behind) / (2 * h)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_warp_is_grid_sample_with_reflection(transform):
    x = _images()
    theta = affine_matrix(transform, 0.07).expand(3, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    expect = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
    torch.testing.assert_close(warp(x, transform, 0.07), expect, rtol=0, atol=1e-12)
    torch.testing.assert_close(warp(x, transform, 0.0), x, rtol=0, atol=1e-12)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_warp_tangent_is_the_limit_of_central_differences(transform):
    x = _images(h=7, w=12)  # not square: each axis has its own (side − 1)/2
    fd = (warp(x, transform, H) - warp(x, transform, -H)) / (2 * H)
    torch.testing.assert_close(warp_tangent(x, transform), fd, rtol=0, atol=1e-4)


def test_translation_tangent_by_hand():
    # y = x²: central difference at i is ((i+1)² − (i−1)²)/2 = 2i; ×(W − 1)/2 = 3 on W = 7
    y = torch.arange(7.0).pow(2).expand(1, 1, 2, 7)
    expect = torch.tensor([0.0, 6, 12, 18, 24, 30, 0])  # borders: reflection makes them 0
    torch.testing.assert_close(action_tangent(y, "translate_x")[0, 0, 0], expect)
    torch.testing.assert_close(action_tangent(y, "translate_y"), torch.zeros_like(y))
    # scale: u_x = −x · (W − 1)/2 = −(i − 3) px at column i, times the difference 2i
    expect = torch.tensor([0.0, 4, 4, 0, -8, -20, 0])
    torch.testing.assert_close(action_tangent(y, "scale")[0, 0, 0], expect)


def test_vectors_and_tokens():
    v = torch.randn(4, 10)
    assert torch.equal(action_tangent(v, "rotate"), torch.zeros_like(v))
    tokens = torch.randn(2, 1 + 9, 5)  # a class token and a 3×3 grid of patches
    tangent = action_tangent(tokens, "translate_x", prefix=1)
    assert torch.equal(tangent[:, 0], torch.zeros(2, 5))
    maps = tokens[:, 1:].transpose(1, 2).reshape(2, 5, 3, 3)
    expect = warp_tangent(maps, "translate_x").reshape(2, 5, 9).transpose(1, 2)
    torch.testing.assert_close(tangent[:, 1:], expect)


def test_parse_transforms():
    assert parse_transforms("translate,scale") == ("translate_x", "translate_y", "scale")
    assert parse_transforms(["rotate", "translate_y"]) == ("translate_y", "rotate")
    with pytest.raises(ValueError, match="unknown transform 'shear'"):
        parse_transforms("rotate,shear")
    with pytest.raises(ValueError, match="no transform"):
        parse_transforms(" , ")


class _Net(nn.Module):
    """conv (zero padding) → ReLU → max-pool → conv → functional mean → linear: one
    operation outside modules, so the leaves do not account for everything."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.head = nn.Linear(6, 5)

    def forward(self, x):
        h = self.conv2(self.pool(self.relu(self.conv1(x))))
        return self.head(h.mean(dim=(2, 3)))


def _sequential(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.LeakyReLU(0.2, inplace=True),  # in place and not idempotent
        nn.ReLU(inplace=True),  # in place: the attribution must not change the forward
        nn.AvgPool2d(2),  # (after the ReLU: exact zeros, kinks no later module meets)
        nn.Conv2d(4, 6, 3, padding=1, padding_mode="circular"),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 5),
    ).double()


def _randomise_bn(net):
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2)
            nn.init.uniform_(m.weight, 0.5, 1.5)
    return net


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_layers_and_end_to_end_against_finite_differences(transform):
    net = _Net().double().eval()
    x = _images(n=4, h=12, w=12)
    mean, std = 0.4, 0.25
    prep = lambda z: (z - mean) / std  # noqa: E731
    res = lie_derivatives(net, x, [transform], ["conv1", "pool", "conv2"], preprocess=prep)
    layers = {
        "conv1": lambda z: net.conv1(prep(z)),
        "pool": lambda z: net.pool(net.relu(net.conv1(prep(z)))),
        "conv2": lambda z: net.conv2(net.pool(net.relu(net.conv1(prep(z))))),
    }
    for j, name in enumerate(res.layers[1:], start=1):
        f = layers[name]
        fd = _fd_equivariance(f, x, transform)
        expect = fd.flatten(1).norm(dim=1) / f(x).flatten(1).norm(dim=1)
        torch.testing.assert_close(res.relative[0, j], expect, rtol=1e-3, atol=1e-6)
    assert res.relative[0, 0].abs().max() < 1e-6  # the input: normalising commutes
    soft = lambda z: torch.softmax(net(prep(z)), dim=1)  # noqa: E731
    fd = (soft(warp(x, transform, H)) - soft(warp(x, transform, -H))) / (2 * H)
    torch.testing.assert_close(res.end_to_end_sq[0], fd.pow(2).sum(1), rtol=1e-3, atol=1e-12)
    torch.testing.assert_close(res.end_to_end_abs[0], fd.abs().mean(1), rtol=1e-3, atol=1e-12)


def test_pointwise_linear_modules_are_exactly_equivariant():
    """1×1 convs, batch norm in eval mode and any per-channel affine map commute with the
    warp's derivative: their Lie derivative and contribution are 0 for every transform."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 3, 1),
        nn.BatchNorm2d(3),
        nn.Conv2d(3, 3, 1),
        nn.Flatten(),
        nn.Linear(3 * 81, 4),
    ).double()
    _randomise_bn(net)
    res = lie_derivatives(net, _images(h=9, w=9), TRANSFORMS, ["0", "1", "2"])
    assert res.relative[:, :4].abs().max() < 1e-12
    pointwise = [k for k, u in enumerate(res.units) if u in ("0", "1", "2")]
    assert res.contributions[:, pointwise].abs().max() < 1e-20
    flatten = res.units.index("3")  # flattening a map is not invariant: all of it is here
    torch.testing.assert_close(res.contributions[:, flatten], res.end_to_end_sq, rtol=1e-9, atol=0)


def test_relu_by_hand():
    """ReLU on positive maps: 0. On the ramp (−1, 1, 3, 5, 7) along x (W = 5, so
    (W − 1)/2 = 2 px per unit): at x = 1, ReLU'(1) · 2·(3 − (−1))/2 = 4 and the action on
    ReLU's output 2·(3 − 0)/2 = 3, so L = 1; at x = 2 both are 4, so 0."""
    relu = nn.Sequential(nn.ReLU(), nn.Flatten(), nn.Linear(5, 2)).double()
    ramp = torch.tensor([-1.0, 1, 3, 5, 7], dtype=torch.float64).expand(1, 1, 1, 5).clone()
    both = torch.cat([ramp, ramp + 2])  # the second image is positive everywhere
    res = lie_derivatives(relu, both, ["translate_x"], ["0"])
    relu_out = torch.relu(both)
    expect = torch.tensor([1.0, 0.0], dtype=torch.float64) / relu_out.flatten(1).norm(dim=1)
    torch.testing.assert_close(res.relative[0, 1], expect)


def test_contributions_against_explicit_jacobians():
    """Each module's contribution is ‖J_{softmax∘rest} L_i‖² with L_i from finite
    differences of the finite warp and J from torch.func.jvp of the rest of the network;
    the leaves' vectors sum to the end-to-end derivative (a Sequential: nothing outside)."""
    net = _randomise_bn(_sequential()).eval()
    x = _images(n=3, h=10, w=10)
    transform = "rotate"
    res = lie_derivatives(net, x, [transform], ["0", "3"])
    layers = list(net)
    assert len(res.units) == len(layers)
    total = torch.zeros(3, 5, dtype=torch.float64)
    h = x
    for i, module in enumerate(layers):
        rest = lambda z, i=i: torch.softmax(nn.Sequential(*layers[i + 1 :])(z), dim=1)  # noqa: E731
        inp = h.clone()
        out = module(inp.clone())
        if inp.dim() != 4:  # vectors in and out: g acts trivially on both
            lie = torch.zeros_like(out)
        elif out.dim() == 4:
            lie = _fd_equivariance(lambda z, m=module: m(z.clone()), inp, transform)
        else:  # a map in, a vector out: the derivative of f(g_t x)
            lie = (module(warp(inp, transform, H)) - module(warp(inp, transform, -H))) / (2 * H)
        _, pushed = torch.func.jvp(rest, (out.clone(),), (lie,))  # the ReLU is in place
        total += pushed
        k = res.units.index(str(i))
        torch.testing.assert_close(
            res.contributions[0, k], pushed.pow(2).sum(1), rtol=2e-3, atol=1e-14
        )
        h = out
    soft = lambda z: torch.softmax(net(z), dim=1)  # noqa: E731
    _, e2e = torch.func.jvp(soft, (x,), (warp_tangent(x.clone(), transform),))
    torch.testing.assert_close(total, e2e, rtol=2e-3, atol=1e-10)
    assert res.unattributed[0].max() < 1e-6 * res.end_to_end_sq[0].max()
    # block "3" (a measured leaf) is the pool, counted once
    assert res.units.count("3") == 1


class _SharedActivation(nn.Module):
    """One activation module called twice (as torchvision's BasicBlock does), inside a
    block measured as one unit."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.block = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh())
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.act = nn.Softplus()
        self.head = nn.Linear(3, 4)

    def forward(self, x):
        h = self.act(self.block(x))
        return self.head(self.act(self.conv(h)).mean(dim=(2, 3)))


def test_a_module_called_twice_and_a_block():
    net = _SharedActivation().double().eval()
    x = _images(n=2, h=8, w=8)
    res = lie_derivatives(net, x, ["translate_y"], ["block", "conv"])
    soft = lambda z: torch.softmax(net.head(z), dim=1)  # noqa: E731
    b = net.block(x)
    c = net.conv(net.act(b))
    lie1 = _fd_equivariance(net.act, b, "translate_y")
    lie2 = _fd_equivariance(net.act, c, "translate_y")
    after1 = lambda z: soft(net.act(net.conv(z)).mean((2, 3)))  # noqa: E731
    _, p1 = torch.func.jvp(after1, (net.act(b),), (lie1,))
    _, p2 = torch.func.jvp(lambda z: soft(z.mean((2, 3))), (net.act(c),), (lie2,))
    act = res.units.index("act")
    torch.testing.assert_close(
        res.contributions[0, act], (p1 + p2).pow(2).sum(1), rtol=2e-3, atol=0
    )
    # the block as one unit: its own Lie derivative carried on
    lie_block = _fd_equivariance(net.block, x, "translate_y")
    after_block = lambda z: soft(net.act(net.conv(net.act(z))).mean((2, 3)))  # noqa: E731
    _, pb = torch.func.jvp(after_block, (b,), (lie_block,))
    k = res.units.index("block")
    assert not res.leaf[k] and res.leaf[res.units.index("block.0")]
    torch.testing.assert_close(res.contributions[0, k], pb.pow(2).sum(1), rtol=2e-3, atol=0)
    # the remainder counts leaves only (the block would count its leaves twice)
    mean_lie = warp_tangent(net.act(c), "translate_y").mean(dim=(2, 3))
    _, outside = torch.func.jvp(soft, (net.act(c).mean((2, 3)),), (mean_lie,))
    torch.testing.assert_close(res.unattributed[0], outside.pow(2).sum(1), rtol=1e-5, atol=0)


def test_unattributed_is_what_operations_outside_modules_add():
    """_Net's functional mean over a 6×6 map is not invariant: the remainder is exactly
    the mean's own Lie derivative carried through the head and the softmax."""
    net = _Net().double().eval()
    x = _images(n=3, h=12, w=12)
    res = lie_derivatives(net, x, ["translate_x"], ["conv2"])
    feat = net.conv2(net.pool(net.relu(net.conv1(x))))
    mean_lie = warp_tangent(feat, "translate_x").mean(dim=(2, 3))  # d/dt mean(g_t h)
    _, pushed = torch.func.jvp(lambda z: torch.softmax(net.head(z), 1), (feat.mean((2, 3)),),
                               (mean_lie,))  # fmt: skip
    assert pushed.abs().max() > 1e-6  # the case is not vacuous
    torch.testing.assert_close(res.unattributed[0], pushed.pow(2).sum(1), rtol=1e-6, atol=1e-16)


def test_their_probe_estimator_converges_to_the_contribution():
    """Their layer-wise estimator: loss = zᵀ softmax(f(x)), z ~ N(0, I); a backward hook
    gives ∂loss/∂out_i and e_i = ⟨∂loss/∂out_i, L_i⟩². Its mean over 4,000 probes is within
    10% of the exact value defstab reports (relative error ≈ √(2/4000) = 2%)."""
    net = _randomise_bn(_sequential(seed=3)).eval()
    for m in net:  # their hooks need a backward pass: no in-place activations
        m.inplace = False
    x = _images(n=1, h=10, w=10, seed=5)
    res = lie_derivatives(net, x, ["scale"], ["0"])
    conv = net[0]
    lie = _fd_equivariance(lambda z: conv(z), x, "scale")
    grads = {}
    conv.register_full_backward_hook(lambda m, gin, gout: grads.__setitem__("out", gout[0]))
    gen = torch.Generator().manual_seed(0)
    xin = x.clone().requires_grad_(True)
    soft = torch.softmax(net(xin), dim=1)
    estimates = []
    for _ in range(4000):
        z = torch.randn(5, generator=gen, dtype=torch.float64)
        soft.backward(z.expand(1, 5), retain_graph=True)
        estimates.append(float((grads["out"] * lie).sum().detach()) ** 2)
    exact = float(res.contributions[0, res.units.index("0"), 0])
    assert exact > 0
    assert abs(sum(estimates) / len(estimates) - exact) < 0.10 * exact


def test_float32_model_and_chunks_agree_with_one_chunk():
    net = _Net().eval()
    x = _images(n=5, h=12, w=12).float()
    one = lie_derivatives(net, x, ["translate_y", "rotate"], ["conv1", "conv2"])
    chunked = lie_derivatives(net, x, ["translate_y", "rotate"], ["conv1", "conv2"], batch_size=2)
    torch.testing.assert_close(one.relative, chunked.relative, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(one.contributions, chunked.contributions, rtol=1e-4, atol=1e-12)
    rows = one.end_to_end_rows()
    assert [r["transform"] for r in rows] == ["translate_y", "rotate"]
    cols = one.layer_columns()
    assert cols["input"]["lie_rotate_contribution"] is None  # the input is no module
    assert cols["conv1"]["lie_rotate_contribution"] > 0
    units = one.unit_rows()
    assert units[-1]["module"] == "(outside modules)"


def test_bad_input_is_one_sentence():
    net = _Net().eval()
    with pytest.raises(ValueError, match="unknown transform 'zoom'"):
        lie_derivatives(net, torch.rand(2, 2, 8, 8), "zoom")
    with pytest.raises(ValueError, match="layer"):
        lie_derivatives(net, torch.rand(2, 2, 8, 8), "rotate", ["conv9"])
    with pytest.raises(ValueError, match="NaN|finite"):
        lie_derivatives(net, torch.full((2, 2, 8, 8), float("nan")), "rotate")
    with pytest.raises(ValueError, match="cannot run on inputs of shape"):
        lie_derivatives(net, torch.rand(2, 3, 8, 8), "rotate")  # three channels for two


class _TinyViT(nn.Module):
    """Patches of 4 px → 16 tokens and a class token → one encoder layer (torch's
    MultiheadAttention, whose eval fast path has no forward-mode derivative) → head."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.patch = nn.Conv2d(3, 8, 4, stride=4)
        self.class_token = nn.Parameter(torch.randn(1, 1, 8))
        self.block = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.class_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        return self.head(self.block(tokens)[:, 0])


def test_attention_and_tokens_against_finite_differences():
    net = _TinyViT().double().eval()
    x = _images(n=2, c=3, h=16, w=16)
    res = lie_derivatives(net, x, ["rotate"], ["patch", "block"])

    def block_maps(z):  # the block's patch tokens as (N, D, 4, 4) maps
        tokens = net.patch(z).flatten(2).transpose(1, 2)
        tokens = torch.cat([net.class_token.expand(z.shape[0], -1, -1), tokens], dim=1)
        return net.block(tokens)[:, 1:].transpose(1, 2).reshape(z.shape[0], 8, 4, 4)

    with torch.no_grad():
        fd = _fd_equivariance(block_maps, x, "rotate")
        out = net.block(torch.cat([net.class_token.expand(2, -1, -1),
                                   net.patch(x).flatten(2).transpose(1, 2)], dim=1))  # fmt: skip
        soft = lambda z: torch.softmax(net(z), dim=1)  # noqa: E731
        cls = (soft(warp(x, "rotate", H)) - soft(warp(x, "rotate", -H))) / (2 * H)
    # the class token is acted on trivially: its own derivative is that of block(g_t x)
    cls_fd = None
    with torch.no_grad():

        def cls_token(z):
            tokens = net.patch(z).flatten(2).transpose(1, 2)
            tokens = torch.cat([net.class_token.expand(z.shape[0], -1, -1), tokens], dim=1)
            return net.block(tokens)[:, 0]

        cls_fd = (cls_token(warp(x, "rotate", H)) - cls_token(warp(x, "rotate", -H))) / (2 * H)
    size = (fd.flatten(1).pow(2).sum(1) + cls_fd.pow(2).sum(1)).sqrt()
    expect = size / out.flatten(1).norm(dim=1)
    torch.testing.assert_close(res.relative[0, 2], expect, rtol=1e-3, atol=0)
    torch.testing.assert_close(res.end_to_end_sq[0], cls.pow(2).sum(1), rtol=1e-3, atol=1e-14)
    assert torch.backends.mha.get_fastpath_enabled()  # restored afterwards


def test_a_conv_is_translation_equivariant_away_from_the_border():
    """Central differences commute with any convolution; with content 3 px from every
    border (the difference reaches 1 px, the conv 1 px more) neither the padding (circular
    here) nor the reflected difference at the border pixels is reached:
    the translations' Lie derivative of the conv layer is 0, the rotation's is not (its
    field varies from pixel to pixel)."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"), nn.Flatten(), nn.Linear(300, 4)
    ).double()
    x = torch.zeros(2, 2, 10, 10, dtype=torch.float64)
    x[..., 3:-3, 3:-3] = _images(n=2, h=4, w=4)
    res = lie_derivatives(net, x, TRANSFORMS, ["0"])
    assert res.relative[:2, 1].abs().max() < 1e-12  # translate_x, translate_y
    assert res.relative[2, 1].min() > 1e-3  # rotate
