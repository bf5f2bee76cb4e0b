"""`gankit eval`: every metric with a record of how it was made."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..artefact.loader import LoadedGenerator, check_generates, load_generator
from ..artefact.sampling import generate, recalibrate_bn
from ..config import DataConfig
from ..console import say, warn
from ..data import DataProbe, Dataset, load_dataset, probe_dataset
from ..errors import GankitError
from ..metrics import core
from ..metrics.classifier import classify, get_classifier
from ..metrics.features import CLASSIFIER_CAVEAT, CLASSIFIER_SOURCES, FEATURE_NETS, as_saved, cached_real_features
from ..version import __version__

ALL = ("fid", "kid", "pr", "dc", "is", "classes", "modes")
CONFIDENT = 0.9  # a digit is "confidently recognisable" when the classifier gives it >= 0.9
WEAK_CLASSIFIER = 0.8  # held-out accuracy below which the classifier's features and classes are not to be trusted
KID_NOTE = "KID is an unbiased estimate: near 0 it can come out slightly negative, which means no measurable difference at this n"


@contextmanager
def _named(flag: str) -> Iterator[None]:
    """A data error about another real source names the flag or key the user gave it (--real, eval.real),
    not the config key behind it."""
    try:
        yield
    except GankitError as e:
        raise GankitError(f"{flag}: {str(e).removeprefix('data.source:').strip()}") from None


def real_data_for(lg_data_cfg: DataConfig, source: str | None, flag: str = "--real") -> Dataset:
    """The real data at the run's resolution and channels (the same resizing as training)."""
    if source is None:
        ds = load_dataset(lg_data_cfg)
    else:
        with _named(flag):
            ds = load_dataset(real_config(lg_data_cfg, source))
    for note in ds.notes:
        say(note)
    return ds


def probe_real(lg_data_cfg: DataConfig, source: str, flag: str) -> DataProbe:
    """`real_data_for`'s data described, nothing decoded (checks before training)."""
    with _named(flag):
        return probe_dataset(real_config(lg_data_cfg, source))


def real_config(lg_data_cfg: DataConfig, source: str) -> DataConfig:
    """The run's data settings (resolution, channels) applied to another real source."""
    return dataclasses.replace(lg_data_cfg, source=source, limit=None)


def _subset(n_total: int, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=g)[: min(n, n_total)].sort().values


def evaluate_samples(fake: torch.Tensor, ds: Dataset, metrics: list[str], features: str | None, seed: int,
                     inception: str | None = None, n_real: int | None = None, fake_labels: torch.Tensor | None = None) -> dict[str, Any]:
    """Metrics of generated samples `fake` ([-1, 1] images or 2D points) against `ds`.

    `fake_labels`: the classes a conditional generator was asked for (adds `label_accuracy`).
    """
    bad = [m for m in metrics if m not in ALL]
    if bad:
        raise GankitError(f"--metrics: unknown {bad}; choose from {', '.join(ALL)}")
    t0 = time.perf_counter()
    res: dict[str, Any] = {}
    weak: list[float] = []  # held-out accuracies of the classifiers used
    if ds.kind == "points":
        if ds.centres is None:
            raise GankitError(f"{ds.name}: 2D metrics need a built-in mixture (ring8, grid25)")
        res.update(core.mode_stats(fake.numpy(), ds.centres.numpy(), ds.std))
        feat_name = "none"
        prov_net = None
    else:
        if tuple(fake.shape[1:]) != ds.shape:
            raise GankitError(f"the real data {ds.name} is {ds.shape}, the generator makes {tuple(fake.shape[1:])}: they cannot be compared")
        fake = as_saved(fake)  # measured as the images a user would save, whatever range G's output has
        feat_name = features or "inception"
        idx = _subset(len(ds), n_real or len(fake), seed)
        need_feats = any(m in metrics for m in ("fid", "kid", "pr", "dc"))
        prov_net = None
        if need_feats:
            net = FEATURE_NETS.get(feat_name)(ds, inception)
            prov_net = {"name": net.name, "weights_sha256": net.weights_sha256, "dim": net.dim}
            if hasattr(net, "val_acc"):
                weak.append(net.val_acc)
            real_f = cached_real_features(net, ds, idx, seed)
            fake_f = net.run(fake)
            if "fid" in metrics:
                res["fid"] = core.fid(real_f, fake_f)
            if "kid" in metrics:
                res["kid"], res["kid_std"] = core.kid(real_f, fake_f, subset_size=1000, seed=seed)
            if "pr" in metrics:
                res["precision"], res["recall"] = core.precision_recall(real_f, fake_f, 3)
            if "dc" in metrics:
                res["density"], res["coverage"] = core.density_coverage(real_f, fake_f, 5)
        labelled = ds.labels is not None and ds.num_classes >= 2
        if labelled and ds.name != "stacked_mnist" and ("is" in metrics or "classes" in metrics):
            model, acc, _ = get_classifier(ds)
            weak.append(acc)
            _, probs = classify(model, fake)
            p = probs.double().numpy()
            if "is" in metrics:
                res["is_classifier"], res["is_classifier_std"] = core.inception_score(p)
            if "classes" in metrics:
                pred = p.argmax(1)
                res.update(core.class_coverage(pred, ds.labels.numpy(), ds.num_classes))
                res["confident_frac"] = float((p.max(1) >= CONFIDENT).mean())
                res["class_hist"] = np.bincount(pred, minlength=ds.num_classes).tolist()
                res["classifier_val_acc"] = acc
                if fake_labels is not None:
                    res["label_accuracy"] = float((pred == fake_labels.numpy()).mean())
        if "modes" in metrics and ds.name == "stacked_mnist":
            res.update(stacked_mnist_modes(fake, ds))
        if not need_feats:  # no feature-space metric: name the network the asked-for ones used
            feat_name = "none"
            if labelled and ("is" in metrics or "classes" in metrics):
                feat_name = "classifier"
            if ds.name == "stacked_mnist" and "modes" in metrics:
                feat_name = "the mnist5k digit classifier, per channel"
    if feat_name == "classifier" and ds.name not in CLASSIFIER_SOURCES and need_feats:
        res.setdefault("warnings", []).append("--features classifier: " + CLASSIFIER_CAVEAT.format(k=ds.num_classes)
                                              + "; use --features inception to judge realism")
        warn(res["warnings"][-1])
    if weak and min(weak) < WEAK_CLASSIFIER:
        acc = min(weak)
        res.setdefault("warnings", []).append(f"the {ds.name} classifier reaches only {acc:.0%} held-out accuracy (below {WEAK_CLASSIFIER:.0%}): "
                           "its features (FID, KID, precision, recall) and class metrics are not to be trusted; use --features inception")
        warn(res["warnings"][-1])
    res["provenance"] = {
        "features": prov_net or feat_name, "n_fake": len(fake), "n_real": min(n_real or len(fake), len(ds)),
        "real": ds.name, "real_fingerprint": ds.fingerprint(), "real_split": f"seeded random subset (seed {seed}) of all {len(ds)}",
        "resolution": list(ds.shape), "resize": "real data resized once at load time exactly as for training (Pillow, aspect kept, centre crop)"
        + ("; both sides then to 299x299 bilinear from uint8 for Inception" if feat_name == "inception" else ""),
        "seed": seed, "gankit": __version__, "seconds": round(time.perf_counter() - t0, 2),
    }
    return res


def stacked_mnist_modes(fake: torch.Tensor, ds: Dataset) -> dict[str, Any]:
    """Classify each channel with the mnist5k digit classifier (at the same resolution)."""
    res = ds.shape[-1]
    digits = load_dataset(DataConfig(source="mnist5k", resolution=None if res == 28 else res))
    model, acc, _ = get_classifier(digits)
    preds, confident = [], []
    for c in range(3):
        _, p = classify(model, fake[:, c:c + 1])
        preds.append(p.argmax(1).numpy())
        confident.append(p.max(1).values >= CONFIDENT)
    out = core.stacked_modes(np.stack(preds, 1))
    return {"stacked_modes": out["modes"], "stacked_kl": out["kl"], "stacked_channel_kl": out["channel_kl"],
            # the share of channels the classifier reads with p >= 0.9: digit quality, where the KL
            # is not explained by missing modes (real stacked_mnist: 97%)
            "stacked_confident": float(torch.cat(confident).float().mean()), "digit_classifier_val_acc": acc}


def generate_for_eval(lg: LoadedGenerator, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    recalibrate_bn(lg.G, lg.spec.z_dim, lg.spec.num_classes, next(lg.G.parameters()).device)
    return generate(lg.G, n, lg.spec.z_dim, lg.spec.num_classes, next(lg.G.parameters()).device, seed=seed)


def evaluate_run(target: str | Path, metrics: list[str], n: int, real: str | None = None, features: str | None = None,
                 seed: int = 0, inception: str | None = None, device: str = "cpu", n_real: int | None = None,
                 default: tuple[str, ...] = ALL) -> dict[str, Any]:
    """A run's metrics; `metrics` empty: `default` for a generator, all of `paired.PAIRED` for a translation."""
    lg = load_generator(target, device)
    if lg.spec.in_channels:  # a translation: its outputs against their targets (`metrics.paired`)
        from ..metrics.paired import PAIRED
        from .paired import evaluate_translation

        ds = real_data_for(lg.cfg.data, real)
        res = evaluate_translation(lg.G, ds, [m for m in metrics if m in PAIRED] if metrics else list(PAIRED), n, seed, features, inception)
        res["provenance"].update({"checkpoint": str(lg.path), "step": lg.step})
        return res
    check_generates(lg, "gankit eval")
    metrics = metrics or list(default)
    ds = real_data_for(lg.cfg.data, real)
    if ds.kind == "points":
        metrics = [m for m in metrics if m == "modes"] or ["modes"]
    x, y = generate_for_eval(lg, n, seed)
    res = evaluate_samples(x, ds, metrics, features, seed, inception, n_real=n_real, fake_labels=y)
    res["provenance"].update({"checkpoint": str(lg.path), "step": lg.step})
    return res
