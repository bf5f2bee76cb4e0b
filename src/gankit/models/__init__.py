"""Architecture registry: each family is one file, parameterised by resolution and channels
(the registry and `Spec` in `models.registry`, which the architecture files import)."""
from __future__ import annotations

from .registry import (ARCHS, OPTIONS, Arch, Spec, archs_with, build_models, describe_archs, make_spec,  # noqa: F401
                       register_arch)

from . import cycle, dcgan, fastgan, mlp, r3gan, resnet, stylegan2, unet  # noqa: F401,E402  (fill the registry)
