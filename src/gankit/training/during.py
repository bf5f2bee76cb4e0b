"""Evaluation during training: every `eval.every` steps, a few metrics of G_ema into metrics.jsonl."""
from __future__ import annotations

from typing import Any

from ..analysis.evaluate import evaluate_samples
from ..artefact.sampling import generate
from ..config import Config
from ..data import Dataset
from .state import recalibrated_ema


class TrainingEvaluator:
    def __init__(self, cfg: Config, ds: Dataset):
        self.cfg, self.ds = cfg, ds
        self.metrics = list(cfg.eval.metrics)
        self.features = cfg.eval.features if ds.kind == "image" else None
        if ds.kind == "points":
            self.metrics = ["modes"]

    def __call__(self, p) -> dict[str, Any]:
        x, y = generate(recalibrated_ema(p), self.cfg.eval.n, p.spec.z_dim, p.spec.num_classes, p.device, seed=12345)
        res = evaluate_samples(x, self.ds, self.metrics, self.features, seed=0, fake_labels=y)
        prov = res.pop("provenance")
        res.pop("class_hist", None)
        out = {f"eval_{k}": v for k, v in res.items() if isinstance(v, (int, float))}
        out["eval_features"] = prov["features"]["name"] if isinstance(prov["features"], dict) else prov["features"]
        out["eval_n"] = self.cfg.eval.n
        return out
