"""The export folder's format: `generator.json` (what the network is and where it came from) beside
`generator.safetensors` (G_ema's weights: batch-norm statistics recomputed for sampling, spectral
norm folded into plain weights), read and checked here. Reading one needs the architecture files
and nothing of the training code: no config file, no checkpoint, no pickle. `export.py` writes
these folders; `generator.py` (gankit.load) and `run.load_generator` read them through this module.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, GankitError
from ..paths import sha256_of

FORMAT = "gankit-generator"
FORMAT_VERSION = 1
META, WEIGHTS, ONNX = "generator.json", "generator.safetensors", "generator.onnx"
ONNX_BACK = "generator_BtoA.onnx"  # a CycleGAN's second direction
ONNX_MAPPING, ONNX_SYNTHESIS = "mapping.onnx", "synthesis.onnx"  # a StyleGAN2's two halves, for edits in w


W_TRUNCATION = "w_avg + psi * (w - w_avg)"  # generator.json: truncation in W (input psi [1] of the ONNX graph)

def is_export(path: str | Path) -> bool:
    return (Path(path) / META).is_file()


def read_meta(folder: Path) -> dict[str, Any]:
    path = folder / META
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not a readable generator description ({str(e)[:160]})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a gankit generator description (no \"format\": \"{FORMAT}\")")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer gankit (format {meta['format_version']}); upgrade gankit to read it")
    for key in ("arch", "spec", "weights", "kind", "z_dim", "num_classes"):
        if key not in meta:
            raise CheckpointError(f"{path}: misses \"{key}\"")
    return meta


def read_export(folder: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The generator network (eval mode, no gradients) and its description, checked: the weights
    file's sha256 must match the description, and every tensor must be there with its shape."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..models import Spec, build_models

    folder = Path(folder)
    meta = read_meta(folder)
    weights = folder / meta["weights"]["file"]
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing (named by {folder / META})")
    if sha256_of(weights) != meta["weights"].get("sha256"):
        raise CheckpointError(f"{weights}: its sha256 does not match {META} (the file was changed, truncated or replaced)")
    try:
        state = load_file(weights)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({str(e)[:160]})") from None
    try:
        spec = Spec(**{**meta["spec"], "shape": tuple(meta["spec"]["shape"])})
        G, _ = build_models(spec, meta["arch"], cycle=meta.get("family") == "cyclegan")
    except (TypeError, GankitError) as e:
        raise CheckpointError(f"{folder / META}: its architecture cannot be built ({e})") from None
    try:
        G.load_state_dict(state)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise CheckpointError(f"{weights}: does not fit {meta['arch']} as {META} describes it ({' '.join(lines[1:3])[:240]})") from None
    return G.to(device).eval().requires_grad_(False), meta
