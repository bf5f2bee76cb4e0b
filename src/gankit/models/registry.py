"""The architecture registry and what an architecture is built from (`Spec`); the architectures
themselves, one file each, register here when `gankit.models` is imported."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..config import ModelConfig
from ..errors import ConfigError
from ..registry import Registry

ARCHS: Registry = Registry("architecture", "model.arch")


@dataclass(frozen=True)
class Spec:
    """What an architecture needs to know to build its networks."""

    shape: tuple[int, ...]  # one example: (C, H, W) for images, (2,) for points
    z_dim: int
    width: int
    depth: int
    num_classes: int  # 0: unconditional
    sn_d: bool
    sn_g: bool
    pac: int
    bn_d: bool = False  # batch norm in D (DCGAN)
    d_extra: int = 0  # 3x3 convs after each strided conv in D (dcgan)
    g_extra: int = 0  # 3x3 convs at each of G's scales below the output (dcgan)
    widths: tuple[int, ...] = ()  # channels per stage, 4x4 up (r3gan)
    blocks: tuple[int, ...] = ()  # residual blocks per stage, 4x4 up (r3gan)
    in_channels: int = 0  # translation: the input image's channels (shape is the output's)

    @property
    def resolution(self) -> int:
        return self.shape[-1]

    @property
    def n_up(self) -> int:
        return int(math.log2(self.resolution // 4))


@dataclass(frozen=True)
class Arch:
    generator: type
    discriminator: type
    kind: str  # "image" | "points" | "pairs" (translation: input image -> output image)
    resolutions: tuple[int, ...] = ()
    options: tuple[str, ...] = ()  # which of OPTIONS (model.<key>) it reads
    conditional: bool = True  # can be class-conditional
    check: Callable[[int, tuple[int, ...]], None] | None = None  # (model.depth, data shape): raises ConfigError


OPTIONS = ("d_extra", "g_extra", "widths", "blocks", "style_mixing")  # model keys only some architectures have


def register_arch(name: str, kind: str, resolutions: tuple[int, ...] = (), options: tuple[str, ...] = (), conditional: bool = True,
                  check: Callable[[int, tuple[int, ...]], None] | None = None):
    def deco(module_classes: tuple[type, type]):
        g, d = module_classes
        ARCHS.register(name)(Arch(g, d, kind, resolutions, options, conditional, check))
        return module_classes

    return deco


def archs_with(option: str) -> list[str]:
    return [n for n in ARCHS.names() if option in ARCHS.get(n).options]


def describe_archs() -> list[tuple[str, str, str, str, str]]:
    """(name, data kind, resolutions, conditional, options) per architecture, for `gankit archs`."""
    rows = []
    for name in ARCHS.names():
        a = ARCHS.get(name)
        res = ", ".join(map(str, a.resolutions)) if a.resolutions else ("-" if a.kind == "points" else "any")
        rows.append((name, a.kind, res, "yes" if a.conditional else "no", ", ".join(f"model.{o}" for o in a.options) or "-"))
    return rows


NEEDS = {"points": "2D point data (ring8, grid25)", "image": "image data", "pairs": "paired images (model.family=pix2pix, data.pairs)"}


def make_spec(cfg: ModelConfig, shape: tuple[int, ...], num_classes: int, data_kind: str, gp: float = 0.0, label_note: str = "",
              in_channels: int = 0) -> Spec:
    """Check the architecture against the data (kind, resolution, labels) and describe its networks.
    `label_note`: why the data has no class labels, shown when a conditional model asks for them;
    `in_channels`: a translation's input channels."""
    arch = ARCHS.get(cfg.arch)
    if arch.kind != data_kind:
        if data_kind == "pairs":
            pairs = ", ".join(n for n in ARCHS.names() if ARCHS.get(n).kind == "pairs")
            raise ConfigError(f"model.arch: translation needs a translation architecture ({pairs}), not {cfg.arch}")
        raise ConfigError(f"model.arch: {cfg.arch} needs {NEEDS[arch.kind]}, but data.source gives {data_kind}s")
    if arch.check is not None:
        arch.check(cfg.depth, shape)
    if arch.resolutions and (shape[-1] != shape[-2] or shape[-1] not in arch.resolutions):
        raise ConfigError(
            f"data.resolution: {cfg.arch} supports {', '.join(map(str, arch.resolutions))}; the data is "
            f"{shape[-2]}x{shape[-1]}: set data.resolution to one of them"
        )
    if cfg.conditional and not arch.conditional:
        raise ConfigError(f"model.conditional: {cfg.arch} is unconditional; set model.conditional=false or choose another model.arch")
    if cfg.conditional and num_classes < 2:
        raise ConfigError("model.conditional: the data has no class labels" + (f" ({label_note})" if label_note else ""))
    for key in OPTIONS:
        if getattr(cfg, key) and key not in arch.options:
            have = archs_with(key)
            raise ConfigError(f"model.{key}: only the {', '.join(have)} arch{'s' if len(have) > 1 else ''} "
                              f"{'have' if len(have) > 1 else 'has'} it; {cfg.arch} does not")
    stages = int(math.log2(shape[-1] // 4)) + 1 if data_kind == "image" else 0
    for key in ("widths", "blocks"):
        v = getattr(cfg, key)
        if len(v) not in (0, 1, stages):
            raise ConfigError(f"model.{key}: {shape[-1]}x{shape[-1]} has {stages} stages (4x4 up): give {stages} values or one, got {list(v)}")
    bn_d = cfg.norm_d == "batch" or (cfg.norm_d == "auto" and not cfg.sn_d and gp == 0)
    return Spec(shape, cfg.z_dim, cfg.width, cfg.depth, num_classes if cfg.conditional else 0, cfg.sn_d, cfg.sn_g, cfg.pac, bn_d,
                cfg.d_extra, cfg.g_extra, tuple(cfg.widths), tuple(cfg.blocks), in_channels)
