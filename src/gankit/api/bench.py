"""`gankit bench`: training speed against a plain PyTorch DCGAN and the machine's matmul peak.

Side by side, in one process, on one machine:
  (a) the textbook DCGAN training step (the pytorch/examples recipe: BCE, Adam 2e-4, betas
      (0.5, 0.999), G's fake batch reused for the G step), written here;
  (b) gankit's own loop (`train`) on the same architecture and batch, with nothing periodic
      in the measured window: per-step cost is the difference of two runs of different
      lengths, so set-up and the final save cancel out;
  (c) gankit's loop with the usual periodic work (metrics lines, health probes, sample
      grids, checkpoints) inside the window.
Every figure is the median of `repeats` measurements. FLOPs per step are counted by
torch's FlopCounterMode on one plain step (the model FLOPs, the same for every column).
"""
from __future__ import annotations

import platform
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .. import console
from ..config import load_config
from ..console import Progress
from ..data import Dataset


# ---------------------------------------------------------------- (a) the plain recipe
class PlainG(nn.Module):
    """The textbook DCGAN generator: z as a 1x1 map, transposed convs, BN, ReLU, tanh."""

    def __init__(self, res: int, nc: int, nz: int = 100, ngf: int = 64):
        super().__init__()
        n = {32: 3, 64: 4}[res]  # blocks up to the last layer
        ch = [ngf * 2 ** (n - 1 - i) for i in range(n)]
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, ch[0], 4, 1, 0, bias=False), nn.BatchNorm2d(ch[0]), nn.ReLU(True)]
        for a, b in zip(ch, ch[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ch[-1], nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class PlainD(nn.Module):
    """The textbook DCGAN discriminator: strided convs, BN after the first, LeakyReLU, sigmoid."""

    def __init__(self, res: int, nc: int, ndf: int = 64):
        super().__init__()
        n = {32: 3, 64: 4}[res]
        ch = [ndf * 2**i for i in range(n)]
        layers: list[nn.Module] = [nn.Conv2d(nc, ch[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for a, b in zip(ch, ch[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ch[-1], 1, 4, 1, 0, bias=False), nn.Sigmoid()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1)


def _init(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class PlainDCGAN:
    """The textbook training step; `step(real)` does one D and one G update."""

    def __init__(self, res: int, nc: int, device: torch.device, nz: int = 100, lr: float = 2e-4, seed: int = 0):
        torch.manual_seed(seed)
        self.G, self.D = PlainG(res, nc, nz).to(device), PlainD(res, nc).to(device)
        self.G.apply(_init)
        self.D.apply(_init)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=lr, betas=(0.5, 0.999))
        self.bce = nn.BCELoss()
        self.nz, self.device = nz, device

    def step(self, real: torch.Tensor) -> tuple[float, float]:
        b = real.shape[0]
        ones = torch.ones(b, device=self.device)
        zeros = torch.zeros(b, device=self.device)
        self.D.zero_grad()
        err_real = self.bce(self.D(real), ones)
        err_real.backward()
        fake = self.G(torch.randn(b, self.nz, 1, 1, device=self.device))
        err_fake = self.bce(self.D(fake.detach()), zeros)
        err_fake.backward()
        self.opt_d.step()
        self.G.zero_grad()
        err_g = self.bce(self.D(fake), ones)
        err_g.backward()
        self.opt_g.step()
        return err_real + err_fake, err_g  # tensors: no host synchronisation in the step


# ---------------------------------------------------------------- measuring
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_seconds(fn: Callable[[], object], calls: int, repeats: int, device: torch.device, warmup: int = 2,
                   best: bool = False) -> float:
    """Median (or with `best`, the minimum) over `repeats` of the mean seconds per call of `fn`
    (after `warmup` calls)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        sync(device)
        times.append((time.perf_counter() - t0) / calls)
    return min(times) if best else statistics.median(times)


def matmul_peak(dtype: torch.dtype, device: torch.device, repeats: int = 5) -> float:
    """GFLOP/s of a large square matrix product, the best of `repeats` (the ceiling the steps are
    compared with; the best, since a shared machine only ever slows it down)."""
    n = 8192 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    calls = 20 if device.type == "cuda" else 10
    s = median_seconds(lambda: a @ b, calls, repeats, device, best=True)
    return 2 * n**3 / s / 1e9


def count_flops(fn: Callable[[], object]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return float(fc.get_total_flops())


def random_images(n: int, nc: int, res: int, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, nc, res, res), dtype=torch.uint8, generator=g)
    return Dataset(x, None, f"random-{nc}x{res}x{res}", "image")


def gankit_config(res: int, nc: int, batch: int, precision: str, channels_last: bool, device: str, steps: int,
                  periodic: bool, threads: int = 0, extra: tuple[str, ...] = ()):
    """gankit's DCGAN with the textbook's choices (BCE = ns loss, BN in D, Adam 2e-4 (0.5, 0.999))."""
    never = 10**9
    every = {"log_every": 50, "sample_every": 250, "checkpoint_every": 250} if periodic else \
        {"log_every": never, "sample_every": never, "checkpoint_every": never}
    ov = [
        "model.arch=dcgan", "model.z_dim=100", "model.width=64", "model.sn_d=false", "loss.name=ns",
        f"train.batch_size={batch}", "train.lr_g=0.0002", "train.lr_d=0.0002", f"train.steps={steps}",
        f"train.precision={precision}", f"train.channels_last={str(channels_last).lower()}", f"train.device={device}",
        f"train.threads={threads}", f"data.resolution={res}", f"data.channels={nc}",
    ] + [f"train.{k}={v}" for k, v in every.items()] + list(extra)
    return load_config(None, ov)


def gankit_seconds_per_step(ds: Dataset, res: int, nc: int, batch: int, precision: str, channels_last: bool,
                            device: str, short: int, long: int, repeats: int, periodic: bool, extra: tuple[str, ...] = ()) -> float:
    """Median of (T(long steps) - T(short steps)) / (long - short) over `repeats` pairs of runs."""
    from ..training.loop import train

    def run(steps: int) -> float:
        cfg = gankit_config(res, nc, batch, precision, channels_last, device, steps, periodic, extra=extra)
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            p = train(cfg, Path(d) / "run", ds=ds, quiet=True)
            sync(p.device)
            return time.perf_counter() - t0

    run(short)  # warm-up: allocator, kernels, thread pools
    diffs = [(run(long) - run(short)) / (long - short) for _ in range(repeats)]
    return statistics.median(diffs)


@dataclass
class Row:
    what: str
    shape: str
    ms: float
    flops: float
    precision: str = "fp32"

    def cells(self, batch: int, peaks: dict[str, float]) -> list[str]:
        gf = self.flops / (self.ms / 1e3) / 1e9
        peak = peaks[self.precision]
        return [self.what, self.shape, f"{self.ms:.1f}", f"{batch / (self.ms / 1e3):.0f}", f"{self.flops / 1e9:.1f}",
                f"{gf:.0f}", f"{100 * gf / peak:.0f}%"]


def machine_line(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads (torch {torch.__version__})"


SHAPES = ("64x64x3", "32x32x3", "32x32x1", "64x64x1")


def run_bench(device_name: str = "cpu", shapes: tuple[str, ...] = SHAPES[:3], batch: int = 64,
              repeats: int = 3, quick: bool = False, quiet: bool = False) -> str:
    """Measure every column for every shape; return the Markdown table (printed as it goes unless `quiet`)."""
    say = (lambda _: None) if quiet else (lambda x: print(x, flush=True))
    from ..device import pick_device

    device = pick_device(device_name)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    gpu = device.type == "cuda"
    peak32 = matmul_peak(torch.float32, device)
    peak16 = matmul_peak(torch.bfloat16, device)
    lines = [f"Machine: {machine_line(device)}; matmul peak {peak32:.0f} GFLOP/s fp32, {peak16:.0f} GFLOP/s bf16 "
             f"(measured in this run). Batch {batch}; medians of {repeats}.", "",
             "| step | shape | ms/step | images/s | GFLOP/step | GFLOP/s | of its precision's peak |", "|---|---|---|---|---|---|---|"]
    say("\n".join(lines))
    ratios = []
    with console.quiet(quiet):
        bar = Progress(len(shapes), "bench: shapes measured", "shape", every_s=60)
    for shape in shapes:
        res, _, nc = (int(v) for v in shape.split("x"))
        ds = random_images(max(1024, 4 * batch), nc, res)
        real = ds.to_float(torch.arange(batch)).to(device)
        plain = PlainDCGAN(res, nc, device)
        flops = count_flops(lambda: plain.step(real))
        heavy = res == 64 and not gpu
        calls = (10 if heavy else 30) if not gpu else 50  # enough steps that run-to-run noise (~0.5 s) stays small
        if quick:
            calls = 2
        ms_plain = 1e3 * median_seconds(lambda: plain.step(real), calls, repeats, device)
        rows = [Row("(a) plain PyTorch, fp32", shape, ms_plain, flops)]
        short, long = (3, 3 + calls) if not gpu else (20, 20 + calls)
        if quick:
            short, long = 2, 4
        variants = [("fp32", False), ("fp32", True), ("bf16", True)]
        for precision, cl in variants:
            s = gankit_seconds_per_step(ds, res, nc, batch, precision, cl, device.type, short, long, repeats, periodic=False)
            label = f"(b) gankit step, {precision}" + (" + channels_last" if cl else "")
            rows.append(Row(label, shape, 1e3 * s, flops, precision))
        if shape.endswith("x1") or quick:  # the full loop, on the shape users train most here (mnist)
            n = 2 if quick else 260
            s = gankit_seconds_per_step(ds, res, nc, batch, "bf16", True, device.type, 10 if not quick else 2, 10 + n, 1 if quick else repeats,
                                        periodic=True)
            rows.append(Row("(c) gankit train, bf16 + channels_last, with logging/health/samples/checkpoints", shape, 1e3 * s, flops, "bf16"))
        for r in rows:
            line = "| " + " | ".join(r.cells(batch, {"fp32": peak32, "bf16": peak16})) + " |"
            lines.append(line)
            say(line)
        ratios.append((shape, [(r.what, ms_plain / r.ms) for r in rows[1:]]))
        bar.update()
    bar.close()
    tail = ["", "Speed-up over (a) (images/s ratio):", ""]
    for shape, rs in ratios:
        tail.append(f"- {shape}: " + "; ".join(f"{k}: {v:.2f}x" for k, v in rs))
        full = next((v for k, v in rs if k.startswith("(c)")), None)
        bare = dict(rs).get("(b) gankit step, bf16 + channels_last")
        if full is not None and bare:
            tail.append(f"  - the full loop runs at {full / bare:.1%} of the bare bf16 step's images/s")
    tail.append(f"\nPeak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    say("\n".join(tail))
    return "\n".join(lines + tail)
