"""Evaluation during training: every `eval.every` steps, a few metrics of G_ema into metrics.jsonl, as
eval_<metric> (a generator's samples, or a translation's outputs for seeded pairs, scored by the code
of `gankit eval`)."""
from __future__ import annotations

from typing import Any

from ..analysis.evaluate import evaluate_samples, real_data_for
from ..analysis.paired import evaluate_translation
from ..artefact.sampling import generate
from ..config import Config
from ..data import Dataset
from .state import recalibrated_ema


class TrainingEvaluator:
    def __init__(self, cfg: Config, ds: Dataset):
        self.cfg = cfg
        self.real = real_data_for(cfg.data, cfg.eval.real, flag="eval.real") if cfg.eval.real else ds
        self.metrics = list(cfg.eval.metrics)
        self.features = cfg.eval.features if ds.kind == "image" else None  # translation: Inception
        if ds.kind == "points":
            self.metrics = ["modes"]

    def __call__(self, p) -> dict[str, Any]:
        G = recalibrated_ema(p)
        if self.real.kind == "pairs":
            res = evaluate_translation(G, self.real, self.metrics, self.cfg.eval.n, seed=0)
        else:
            x, y = generate(G, self.cfg.eval.n, p.spec.z_dim, p.spec.num_classes, p.device, seed=12345)
            res = evaluate_samples(x, self.real, self.metrics, self.features, seed=0, fake_labels=y)
        prov = res.pop("provenance")
        res.pop("class_hist", None)
        out = {f"eval_{k}": v for k, v in res.items() if isinstance(v, (int, float))}
        out["eval_features"] = prov["features"]["name"] if isinstance(prov["features"], dict) else prov["features"]
        out["eval_n"] = prov.get("n_fake", self.cfg.eval.n)
        return out
