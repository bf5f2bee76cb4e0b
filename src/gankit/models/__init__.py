"""Architecture registry: each family is one file, parameterised by resolution and channels
(the registry and `Spec` in `models.registry`, which the architecture files import)."""
from __future__ import annotations

import dataclasses

from torch import nn

from .registry import ARCHS, OPTIONS, Arch, Spec, archs_with, describe_archs, make_spec, register_arch  # noqa: F401

from . import dcgan, fastgan, mlp, r3gan, resnet, stylegan2, unet  # noqa: F401,E402  (fill the registry)
from .cycle import cycle_models  # noqa: E402  (and resnet_blocks)


def build_models(spec: Spec, arch_name: str, vae: bool = False, cycle: bool = False) -> tuple[nn.Module, nn.Module]:
    """(G, D); with `vae`, D is the encoder: the same body, unconditioned, with a
    2 * z_dim head (posterior mean and log-variance); with `cycle`, CycleGAN's pairs (`cycle.CycleG`, `cycle.CycleD`)."""
    arch = ARCHS.get(arch_name)
    if cycle:
        return cycle_models(arch.generator, spec)
    if vae:
        enc = dataclasses.replace(spec, sn_d=False, num_classes=0, pac=1, bn_d=True)
        return arch.generator(spec), arch.discriminator(enc, out_dim=2 * spec.z_dim)
    return arch.generator(spec), arch.discriminator(spec)
