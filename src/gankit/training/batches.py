"""The data order and the batches it gives: one global, seeded permutation per epoch, and real
batches and latents on the training device."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data import Dataset


class DataOrder:
    """Shuffled epochs from a seeded permutation per epoch; its state is two integers."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed
        self.epoch, self.pos = 0, 0
        self._perm = self._make(0)

    def _make(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def next(self, b: int) -> torch.Tensor:
        out = []
        while b > 0:
            take = min(b, self.n - self.pos)
            out.append(self._perm[self.pos:self.pos + take])
            self.pos += take
            b -= take
            if self.pos == self.n:
                self.epoch, self.pos = self.epoch + 1, 0
                self._perm = self._make(self.epoch)
        return torch.cat(out)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, s: dict[str, int]) -> None:
        self.epoch, self.pos = int(s["epoch"]), int(s["pos"])
        self._perm = self._make(self.epoch)


class Batches:
    """Real batches and latents on the training device. On a GPU the uint8 data is copied
    there once, and indices and latents travel through pinned memory, so the step never
    waits for a copy. On the CPU the data tensor is used in place (held once)."""

    def __init__(self, ds: Dataset, device: torch.device, channels_last: bool, conditional: bool):
        self.ds, self.device, self.channels_last = ds, device, channels_last
        self.gpu = device.type == "cuda"
        self.x = ds.x.to(device) if self.gpu else ds.x
        self.labels = None if not conditional else (ds.labels.to(device) if self.gpu else ds.labels)
        self.inputs = None if ds.inputs is None else (ds.inputs.to(device) if self.gpu else ds.inputs)

    def send(self, t: torch.Tensor) -> torch.Tensor:
        return t.pin_memory().to(self.device, non_blocking=True) if self.gpu else t

    def real(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Rows `idx` in [-1, 1] and their labels; with `data.mirror` the order runs over 2N, and row
        N + i is image i flipped left-right."""
        n = self.ds.x.shape[0]
        flip = idx >= n
        idx = self.send(idx % n)
        b = self.ds.to_float(idx, self.x)
        if bool(flip.any()):
            flip = self.send(flip)[:, None, None, None]
            b = torch.where(flip, b.flip(-1), b)
        if self.channels_last and b.dim() == 4:
            b = b.contiguous(memory_format=torch.channels_last)
        return b, (self.labels[idx] if self.labels is not None else None)

    def pair(self, idx: torch.Tensor, jitter: float = 0.0, seeds: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Translation: inputs and targets of rows `idx`, in [-1, 1]; with `jitter`, each pair jittered
        alike (`jittered`) by its seed in `seeds`."""
        assert self.inputs is not None and self.ds.paired, "pair() needs paired data"
        a, b = self._ab(idx, idx)
        if jitter > 0:
            a, b = jittered(a, seeds, jitter), jittered(b, seeds, jitter)
        return self._layout(a), self._layout(b)

    def domains(self, idx: torch.Tensor, jitter: float = 0.0, seeds: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """CycleGAN: a batch of A and a batch of B that are never each other's pair, for order indices `idx`
        (0..len(ds)-1). Unpaired domains: each cycles through its own images. Paired data: A from the
        first half of the pairs, B from the second (the model never sees the two sides of one pair).
        With `jitter`, each image jittered by itself (A by its seed, B by another drawn from it)."""
        assert self.inputs is not None, "domains() needs translation data"
        na, nb = self.inputs.shape[0], self.x.shape[0]
        if self.ds.paired:
            half = na // 2
            a, b = self._ab(idx % half, half + idx % (nb - half))
        else:
            a, b = self._ab(idx % na, idx % nb)
        if jitter > 0:
            a, b = jittered(a, seeds, jitter), jittered(b, seeds ^ 0x5DEECE66D, jitter)
        return self._layout(a), self._layout(b)

    def _ab(self, ia: torch.Tensor, ib: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ia, ib = self.send(ia), self.send(ib)
        return self.inputs[ia].float() / 127.5 - 1.0, self.ds.to_float(ib, self.x)

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def jittered(x: torch.Tensor, seeds: torch.Tensor, scale: float) -> torch.Tensor:
    """pix2pix's random jitter of images `x` [N, C, H, W] in [-1, 1]: each scaled up by `scale` (bicubic),
    cropped back to H x W at a place drawn from its seed, and flipped left-right when the seed says so.
    The same seed gives the same crop and flip at any channel count (a pair's input and target alike)."""
    n, _, h, w = x.shape
    up_h, up_w = round(h * (1 + scale)), round(w * (1 + scale))
    big = F.interpolate(x.float(), size=(up_h, up_w), mode="bicubic", align_corners=False).clamp(-1, 1)
    out = []
    for i, s in enumerate(seeds.tolist()):
        g = torch.Generator().manual_seed(int(s))
        top, left = int(torch.randint(up_h - h + 1, (), generator=g)), int(torch.randint(up_w - w + 1, (), generator=g))
        crop = big[i, :, top:top + h, left:left + w]
        out.append(crop.flip(-1) if float(torch.rand((), generator=g)) < 0.5 else crop)
    return torch.stack(out).to(x.dtype)
