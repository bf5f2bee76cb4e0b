"""A small CNN trained on a dataset's own labels: fast domain features and class predictions.

Trained once per dataset content (its fingerprint) and cached as safetensors under
$GANKIT_CACHE (default ~/.cache/gankit).
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ..console import Progress
from ..data import Dataset
from ..errors import GankitError
from ..paths import cache_dir


class Classifier(nn.Module):
    FEATURES = 128

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, 1, 1), nn.ReLU(), nn.Conv2d(32, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(), nn.Conv2d(64, 64, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64 * 16, self.FEATURES), nn.ReLU(),
        )
        self.head = nn.Linear(self.FEATURES, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.body(x)  # [N, 128] features
        return f, self.head(f)  # logits [N, K]


def _shift(x: torch.Tensor, gen: torch.Generator, max_shift: int) -> torch.Tensor:
    """Random integer translations with -1 (black) padding, as light augmentation."""
    n, c, h, w = x.shape
    pad = F.pad(x, (max_shift,) * 4, value=-1.0)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    return torch.stack([pad[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def train_classifier(ds: Dataset, epochs: int = 8, seed: int = 0, holdout: float = 0.1) -> tuple[Classifier, float]:
    """Train on (1 - holdout) of the data; returns the model and its held-out accuracy."""
    if ds.labels is None or ds.num_classes < 2 or ds.kind != "image":
        raise GankitError(f"{ds.name}: the classifier feature network needs labelled image data")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n = len(ds)
    perm = torch.randperm(n, generator=g)
    n_val = max(1, int(n * holdout))
    val, tr = perm[:n_val], perm[n_val:]
    model = Classifier(ds.shape[0], ds.num_classes)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    steps_per_epoch = max(1, len(tr) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=epochs * steps_per_epoch)
    max_shift = max(1, ds.shape[-1] // 14)
    model.train()
    bar = Progress(epochs * steps_per_epoch, f"training the {ds.name} feature classifier (once; it is cached)", "step")
    for _ in range(epochs):
        order = tr[torch.randperm(len(tr), generator=g)]
        for i in range(steps_per_epoch):
            bar.update()
            idx = order[i * 64:(i + 1) * 64]
            x = _shift(ds.to_float(idx), g, max_shift)
            loss = F.cross_entropy(model(x)[1], ds.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    bar.close()
    model.eval()
    with torch.no_grad():
        acc = float((model(ds.to_float(val))[1].argmax(1) == ds.labels[val]).float().mean())
    return model, acc


def get_classifier(ds: Dataset, quiet: bool = False) -> tuple[Classifier, float, str]:
    """The cached classifier for this dataset content, training it on first use."""
    fp = ds.fingerprint()
    path = cache_dir() / f"classifier-{fp}.safetensors"
    model = Classifier(ds.shape[0], ds.num_classes)
    if path.is_file():
        try:
            state = load_file(str(path))
            acc = float(state.pop("_val_acc").item())
            model.load_state_dict(state)
            return model.eval(), acc, fp
        except Exception:  # noqa: BLE001 - a broken cache entry is retrained
            pass
    if not quiet:
        print(f"training the {ds.name} classifier for evaluation (once; cached in {path.parent})", flush=True)
    model, acc = train_classifier(ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()} | {"_val_acc": torch.tensor(acc)}
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    save_file(state, str(tmp))
    os.replace(tmp, path)
    return model, acc, fp


@torch.no_grad()
def classify(model: Classifier, x: torch.Tensor, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [-1, 1] -> (features [N, 128], class probabilities [N, K])."""
    feats, probs = [], []
    for i in range(0, len(x), batch):
        f, logits = model(x[i:i + batch].float())
        feats.append(f)
        probs.append(logits.softmax(1))
    return torch.cat(feats), torch.cat(probs)
