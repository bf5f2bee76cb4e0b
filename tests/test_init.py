"""Initialisation as the architectures say, spectral norm included, and the SNGAN ResNet as its authors build it."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from gankit.config import make_config
from gankit.models import build_models, make_spec


def _nets(arch: str, *overrides: str, classes: int = 0, res: int = 32):
    cfg = make_config({}, [f"model.arch={arch}", *overrides])
    return build_models(make_spec(cfg.model, (3, res, res), classes, "image"), arch)


def _sn_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
            and parametrize.is_parametrized(m, "weight")]


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_initialisation_reaches_layers_under_spectral_norm(arch):
    """The architectures' initialisers wrote `m.weight`, which under spectral norm is a copy computed on
    access: D kept PyTorch's default weights and non-zero biases whatever the file said. Now the weights
    under the normalisation are initialised, and the normalisation's vectors estimated for them."""
    torch.manual_seed(0)
    _, D = _nets(arch)
    layers = _sn_layers(D)
    assert len(layers) >= 4
    for m in layers:
        if m.bias is not None:
            assert float(m.bias.abs().max()) == 0.0
        w = m.parametrizations.weight.original.detach()
        fan_in, fan_out = w[0].numel(), w.shape[0] * w[0][0].numel()
        if arch == "dcgan":
            expected = 0.02  # DCGAN's N(0, 0.02)
        else:  # Glorot-uniform, gain sqrt(2) in the residual branches (the SNGAN authors' code)
            expected = getattr(m, "init_gain", 1.0) * math.sqrt(2 / (fan_in + fan_out))
        assert float(w.std()) == pytest.approx(expected, rel=0.15), (m, float(w.std()), expected)
        # the normalised weight's largest singular value is about 1: the power iteration saw these weights
        top = torch.linalg.matrix_norm(m.weight.detach().flatten(1) if not isinstance(m, nn.ConvTranspose2d)
                                       else m.weight.detach().transpose(0, 1).flatten(1), ord=2)
        assert float(top) == pytest.approx(1.0, abs=0.03), (m, float(top))  # without: up to 1.3


def test_resnet_d_at_32_pixels_is_the_authors_cifar10_network():
    """pfnet-research/sngan_projection's `snresnet_32.py`: an optimised down block, a down block and two
    plain blocks at 8x8 (gankit had one plain block: 3 of the 4)."""
    _, D = _nets("resnet", "model.width=32")
    assert [(b.down, b.first) for b in D.blocks] == [(True, True), (True, False), (False, False), (False, False)]
    assert [b.conv1.init_gain for b in D.blocks] == [math.sqrt(2)] * 4
    assert D(torch.zeros(2, 3, 32, 32)).shape == (2,)


@pytest.mark.parametrize("conditional,band", [(False, (0.12, 0.5)), (True, (1.2, 5.0))])
def test_resnet_start_up_logits_are_the_authors_scale(conditional, band):
    """D's logit std on unit images, median of 3 seeds, against the authors' initialisation on
    StudioGAN's networks (`benchmarks/parity/resnet.py`, 5 seeds): 0.22 unconditional, 2.9 conditional
    (StudioGAN's orthogonal weights: 0.61 and 11.1; gankit 0.28 and 2.6)."""
    stds = []
    for seed in range(3):
        torch.manual_seed(seed)
        _, D = _nets("resnet", "model.width=32", "model.z_dim=128", f"model.conditional={str(conditional).lower()}",
                     classes=10 if conditional else 0)
        g = torch.Generator().manual_seed(100 + seed)
        x = torch.randn(64, 3, 32, 32, generator=g)
        with torch.no_grad():
            stds.append(float(D.eval()(x, torch.arange(64) % 10 if conditional else None).std()))
    assert band[0] < sorted(stds)[1] < band[1], stds


def test_dcgan_start_up_statistics_are_the_references():
    """Radford et al.'s networks (`model.sn_d=false`: batch norm in D) at pytorch/examples' sizes (64x64,
    64 channels, z 100), median of 3 seeds, against that code's networks and initialisation
    (`benchmarks/parity/dcgan.py`, 5 seeds): G's output std 0.204 in training mode, D's logit std on
    N(0, 1) images 1.10 (gankit 0.208 and 1.11)."""
    g_std, d_std = [], []
    for seed in range(3):
        torch.manual_seed(seed)
        G, D = _nets("dcgan", "model.width=64", "model.z_dim=100", "model.sn_d=false", res=64)
        with torch.no_grad():
            g_std.append(float(G.train()(torch.randn(64, 100, generator=torch.Generator().manual_seed(100 + seed))).std()))
            d_std.append(float(D.train()(torch.randn(64, 3, 64, 64, generator=torch.Generator().manual_seed(200 + seed))).std()))
    assert 0.17 < sorted(g_std)[1] < 0.24, g_std
    assert 0.9 < sorted(d_std)[1] < 1.3, d_std
