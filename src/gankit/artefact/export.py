"""`gankit export`: a trained generator as a small, safe, portable folder.

- safetensors: `generator.safetensors` (G_ema: batch-norm statistics as recomputed for sampling,
  spectral norm folded into plain weights) and `generator.json` (see `generator.py`);
- onnx: the same plus `generator.onnx` (opset 18, dynamic batch; inputs `z` [B, z_dim] and, when
  conditional, `y` [B, K] float class weights; output images in [-1, 1] NCHW, or points [B, 2]); a
  translation run: input `image` [B, C_in, H, W] with dynamic height and width (multiples of the
  network's), output `translated`; a CycleGAN also `generator_BtoA.onnx`;
- web: the same plus the sampler page (`index.html`, `gan.js`) and the onnxruntime-web files it
  needs (the single-threaded wasm build only), ready for `gankit serve`.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..errors import GankitError
from ..latent.space import LatentSpace
from ..paths import cache_dir, check_writable, sha256_of
from .exported import META, ONNX, ONNX_BACK, ONNX_MAPPING, ONNX_SYNTHESIS, WEIGHTS
from .generator import describe

FORMATS = ("safetensors", "onnx", "web")
OPSET = 18
ORT_WEB_VERSION = "1.30.0"  # the npm package `onnxruntime-web`, installed by `make web`
ORT_WEB_FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm")  # the wasm build, one file of glue
PAGE_FILES = ("index.html", "gan.js", "page.css")
TRANSLATING_PAGE = "translate.html"  # index.html of a translation run's web export
EXAMPLE_BATCH = 2  # the exporter freezes a batch of 1 into the graph (pytorch/pytorch#151582)


def plain_generator(G: nn.Module) -> nn.Module:
    """A copy of G in eval mode with every parametrization (spectral norm) folded into its weight."""
    G = copy.deepcopy(G).cpu().float().eval().requires_grad_(False)
    for m in G.modules():
        if parametrize.is_parametrized(m):
            for name in list(m.parametrizations.keys()):
                parametrize.remove_parametrizations(m, name, leave_parametrized=True)
    return G


def ort_web_dir() -> Path | None:
    """Where onnxruntime-web's dist files are: $GANKIT_ORT_WEB, else what `make web` installed."""
    env = os.environ.get("GANKIT_ORT_WEB")
    candidates = [Path(env)] if env else []
    candidates.append(cache_dir() / f"onnxruntime-web-{ORT_WEB_VERSION}" / "node_modules" / "onnxruntime-web" / "dist")
    for c in candidates:
        if all((c / f).is_file() for f in ORT_WEB_FILES):
            return c
    return None


def _ort_web_or_refuse() -> Path:
    found = ort_web_dir()
    if found is None:
        raise GankitError(f"--format web: needs onnxruntime-web {ORT_WEB_VERSION}: run `make web` (uses npm), or "
                          f"`npm install --prefix {cache_dir() / f'onnxruntime-web-{ORT_WEB_VERSION}'} "
                          f"onnxruntime-web@{ORT_WEB_VERSION}`, or set GANKIT_ORT_WEB to its dist/ folder")
    return found


def _onnx_exporter_or_refuse() -> None:
    try:
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise GankitError('--format: onnx and web need the ONNX exporter\'s packages: pip install "gankit[onnx]"') from None


class _Unconditional(nn.Module):
    """The exported graph's signature: `z` alone."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.G(z, None)


class _Conditional(_Unconditional):
    """`z` and float class weights `y` [B, K] (one-hot, or a blend), not integer labels."""

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.G(z, y)


class _UnconditionalW(_Unconditional):
    """`z` and `psi` [1], the truncation in W of a generator with a mapping network."""

    def forward(self, z: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.G(z, None, truncation=psi)


class _ConditionalW(_Unconditional):
    def forward(self, z: torch.Tensor, y: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.G(z, y, truncation=psi)


def _save_onnx(module: nn.Module, args: tuple[torch.Tensor, ...], names: list[str], output: str, dims: dict[str, Any], path: Path) -> None:
    """`module` (eval mode) as ONNX through torch's dynamo exporter, opset OPSET, one file; its chatter silenced."""
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module.eval(), args, input_names=names, output_names=[output], opset_version=OPSET, dynamo=True,
                                    dynamic_shapes=dims, verbose=False, optimize=True, external_data=False)
    program.save(str(path), external_data=False)


def write_onnx(G: nn.Module, meta: dict[str, Any], path: Path) -> dict[str, Any]:
    """G as ONNX (the dynamo exporter, opset 18, dynamic batch); returns the description of its inputs."""
    k = int(meta["num_classes"])
    z = torch.randn(EXAMPLE_BATCH, int(meta["z_dim"]), generator=torch.Generator().manual_seed(0))
    args: tuple[torch.Tensor, ...] = (z,)
    names = ["z"]
    if k:
        args = (z, torch.eye(k)[torch.arange(EXAMPLE_BATCH) % k])
        names.append("y")
    in_w = bool(getattr(G, "truncates_w", False))
    wrapper = {(False, False): _Unconditional, (True, False): _Conditional, (False, True): _UnconditionalW, (True, True): _ConditionalW}[(bool(k), in_w)]
    batch = torch.export.Dim("batch")
    dims: dict[str, Any] = {n: {0: batch} for n in names}
    if in_w:
        args, dims["psi"] = (*args, torch.full((1,), 0.7)), None
        names.append("psi")
    _save_onnx(wrapper(G), args, names, "images" if meta["kind"] == "image" else "points", dims, path)
    out_shape = ["batch", *meta["output"]["shape"]]
    return {"file": path.name, "opset": OPSET, "sha256": sha256_of(path),
            "inputs": {"z": ["batch", int(meta["z_dim"])], **({"y": ["batch", k]} if k else {}), **({"psi": [1]} if in_w else {})},
            "output": {"name": "images" if meta["kind"] == "image" else "points", "shape": out_shape}}


class _Mapping(_Unconditional):
    """A mapping network's graph: `z`, `psi` [1] -> the truncated w [B, w_dim]."""

    def forward(self, z: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.G.ws(z, None, truncation=psi)[:, 0]


class _ConditionalMapping(_Unconditional):
    """`z`, class weights `y` [B, K], `psi` [1] -> the truncated w [B, w_dim]."""

    def forward(self, z: torch.Tensor, y: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.G.ws(z, y, truncation=psi)[:, 0]


class _Synthesis(nn.Module):
    """A synthesis network's graph: per-layer styles `ws` [B, layers, w_dim] -> images."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        return self.G.synthesis(ws)


def write_w_onnx(G: nn.Module, meta: dict[str, Any], out: Path) -> dict[str, Any]:
    """For a generator whose latent space is w (StyleGAN2): mapping.onnx (z, y, psi -> w) and synthesis.onnx
    (ws -> images) beside generator.onnx, which is their composition: the sampler page edits and shows
    projections in w with them."""
    k = int(meta["num_classes"])
    batch = torch.export.Dim("batch")
    z = torch.randn(EXAMPLE_BATCH, int(meta["z_dim"]), generator=torch.Generator().manual_seed(0))
    args: tuple[torch.Tensor, ...] = (z, *((torch.eye(k)[torch.arange(EXAMPLE_BATCH) % k],) if k else ()), torch.full((1,), 0.7))
    names = ["z", *(["y"] if k else []), "psi"]
    _save_onnx((_ConditionalMapping if k else _Mapping)(G), args, names, "w", {"z": {0: batch}, **({"y": {0: batch}} if k else {}), "psi": None}, out / ONNX_MAPPING)
    ws = G.ws(z, args[1] if k else None)
    _save_onnx(_Synthesis(G), (ws,), ["ws"], "images", {"ws": {0: batch}}, out / ONNX_SYNTHESIS)
    return {"mapping": {"file": ONNX_MAPPING, "sha256": sha256_of(out / ONNX_MAPPING),
                        "inputs": {"z": ["batch", int(meta["z_dim"])], **({"y": ["batch", k]} if k else {}), "psi": [1]},
                        "output": {"name": "w", "shape": ["batch", int(G.w_dim)]}},
            "synthesis": {"file": ONNX_SYNTHESIS, "sha256": sha256_of(out / ONNX_SYNTHESIS),
                          "inputs": {"ws": ["batch", int(G.num_ws), int(G.w_dim)]},
                          "output": {"name": "images", "shape": ["batch", *meta["output"]["shape"]]}}}


class _Translator(nn.Module):
    """The exported graph of a translation network: `image` [B, C_in, H, W] in [-1, 1] -> `translated`."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.G(image, None)


MAX_SIDE = 8192  # the exported translators' largest image side (a bound the exporter needs)


def write_translator_onnx(G: nn.Module, path: Path) -> dict[str, Any]:
    """A translation network as ONNX (opset 18): dynamic batch, height and width (multiples of `G.multiple`)."""
    m = G.multiple
    dims = {0: torch.export.Dim("batch"), 2: m * torch.export.Dim("h", min=1, max=MAX_SIDE // m),
            3: m * torch.export.Dim("w", min=1, max=MAX_SIDE // m)}
    x = torch.zeros(EXAMPLE_BATCH, G.in_channels, 2 * m, 3 * m)
    _save_onnx(_Translator(G), (x,), ["image"], "translated", {"image": dims}, path)
    return {"file": path.name, "opset": OPSET, "sha256": sha256_of(path),
            "inputs": {"image": ["batch", G.in_channels, f"{m}*h", f"{m}*w"]},
            "output": {"name": "translated", "shape": ["batch", G.out_channels, f"{m}*h", f"{m}*w"]},
            "note": f"height and width must be multiples of {m}, at most {MAX_SIDE}: pad (reflect) and crop back; values in [-1, 1]"}


def stored_directions(G: nn.Module) -> dict[str, Any]:
    """The semantic directions an export carries in generator.json (latent offsets; generator.onnx is unchanged):
    sefa, and ganspace where the latent is a mapping network's w."""
    from ..latent.directions import METHODS, find_directions

    space = LatentSpace.of(G)
    if not hasattr(G, "latent_weight"):
        return {}
    return {m: find_directions(space, m).to_json() for m in METHODS if m == "sefa" or space.name == "w"}


def export(target: str | Path, fmt: str, out: Path, device: str = "cpu") -> Path:
    """Write the export folder `out` for the generator of `target` (a run folder or a checkpoint)."""
    from safetensors.torch import save_file

    from .loader import check_generates, load_generator

    if fmt not in FORMATS:
        raise GankitError(f"--format: unknown {fmt!r}; choose from {', '.join(FORMATS)}")
    if Path(target).resolve() == out.resolve():
        raise GankitError(f"--out: {out} is the folder being exported; name another")
    lg = load_generator(target, device)  # a bad run or checkpoint is refused before anything is written
    translating = bool(lg.spec.in_channels)
    if not translating:
        check_generates(lg, "gankit export")
    ort_dir = _ort_web_or_refuse() if fmt == "web" else None
    if fmt != "safetensors":
        _onnx_exporter_or_refuse()
    check_writable(out, flag="--out")
    for name in (META, ONNX, ONNX_BACK, ONNX_MAPPING, ONNX_SYNTHESIS, *PAGE_FILES, *ORT_WEB_FILES):  # what an earlier export of another format left
        (out / name).unlink(missing_ok=True)
    G = plain_generator(lg.G)
    meta = describe(lg)
    save_file({k: v.contiguous() for k, v in G.state_dict().items()}, str(out / WEIGHTS))
    meta["weights"] = {"file": WEIGHTS, "sha256": sha256_of(out / WEIGHTS), "tensors": len(G.state_dict())}
    if meta["kind"] == "image" and not translating:
        meta["directions"] = stored_directions(G)
    if fmt in ("onnx", "web") and translating:  # A to B in generator.onnx; a CycleGAN's B to A beside it
        meta["onnx"] = write_translator_onnx(G.direction("AtoB") if hasattr(G, "ba") else G, out / ONNX)
        if hasattr(G, "ba"):
            meta["onnx_BtoA"] = write_translator_onnx(G.ba, out / ONNX_BACK)
    elif fmt in ("onnx", "web"):
        meta["onnx"] = write_onnx(G, meta, out / ONNX)
        if meta["kind"] == "image" and LatentSpace.of(G).name == "w":
            meta["onnx_w"] = write_w_onnx(G, meta, out)
    if ort_dir is not None:
        from importlib.resources import files

        page = files("gankit") / "web"
        for name in PAGE_FILES:  # a translation run's page is the translating one
            source = TRANSLATING_PAGE if translating and name == "index.html" else name
            (out / name).write_bytes((page / source).read_bytes())
        for name in ORT_WEB_FILES:
            shutil.copyfile(ort_dir / name, out / name)
        meta["web"] = {"onnxruntime_web": ORT_WEB_VERSION, "files": [*PAGE_FILES, *ORT_WEB_FILES]}
    (out / META).write_text(json.dumps(meta, indent=1))
    return out
