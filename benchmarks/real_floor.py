"""The floor of each metric: real images scored against other real images.

Half A of the data plays the generator, half B the real set, both scored with the same
feature network that `gankit eval` uses (the classifier trained on the whole dataset, or
the TF-FID Inception network), with the same metric code. IS and class metrics always use
the classifier.

    .venv/bin/python benchmarks/real_floor.py [--source mnist5k] [--resolution 32] [--n 2000] [--features inception]

With Inception the features of all real images come from (and go to) the same cache as
`gankit eval --n <dataset size>`, so after evaluating a run this costs no Inception time.
"""
from __future__ import annotations

import argparse

import torch

from gankit.config import DataConfig
from gankit.data import load_dataset
from gankit.metrics import core
from gankit.metrics.classifier import classify, get_classifier


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="mnist5k")
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--n", type=int, default=2000, help="images per half (at most half the data)")
    ap.add_argument("--features", default="classifier", choices=["classifier", "inception"])
    a = ap.parse_args()
    ds = load_dataset(DataConfig(source=a.source, resolution=a.resolution))
    model, _, _ = get_classifier(ds)
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(123))
    half = len(ds) // 2
    ia, ib = perm[:half][: a.n], perm[half:][: a.n]
    fa, pa = classify(model, ds.to_float(ia))
    fb, _ = classify(model, ds.to_float(ib))
    fa, fb, pa = fa.double().numpy(), fb.double().numpy(), pa.double().numpy()
    if a.features == "inception":
        from gankit.analysis.evaluate import _subset
        from gankit.metrics.features import cached_real_features
        from gankit.metrics.features import FEATURE_NETS

        net = FEATURE_NETS.get("inception")(ds, None)
        every = cached_real_features(net, ds, _subset(len(ds), len(ds), 0), 0)  # row i = image i
        fa, fb = every[ia.numpy()], every[ib.numpy()]
    res = {"fid": core.fid(fb, fa)}
    res["kid"], res["kid_std"] = core.kid(fb, fa, subset_size=min(1000, len(fa)))
    res["precision"], res["recall"] = core.precision_recall(fb, fa)
    res["density"], res["coverage"] = core.density_coverage(fb, fa)
    res["is_classifier"], _ = core.inception_score(pa)
    cc = core.class_coverage(pa.argmax(1), ds.labels.numpy(), ds.num_classes)
    res.update(cc)
    res["confident_frac"] = float((pa.max(1) >= 0.9).mean())
    print(f"{a.source} at {a.resolution}px: {len(ia)} images of half A against {len(ib)} of half B, {a.features} features")
    for k, v in res.items():
        print(f"{k:<16} {v:.4f}" if isinstance(v, float) else f"{k:<16} {v}")


if __name__ == "__main__":
    main()
