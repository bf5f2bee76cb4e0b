"""pix2pix as its authors train it against gankit's pix2pix, on CIFAR-10 colourisation, the same minutes.

    .venv/bin/python benchmarks/parity/pix2pix_loop.py --ref PATH --minutes 20 --out /tmp/p2p_loop

PATH holds the authors' `models/networks.py` (junyanz/pytorch-CYCLEGAN-and-pix2pix; a checkout, or a
folder with that file). The task and split are benchmarks/translation_cifar10.py's (grey in, colour out;
49,000 training images, 1,000 held out). Arms, each one thread, two at a time side by side:

- `theirs`: the authors' U-Net and PatchGAN (batch norm, their N(0, 0.02) initialisation) in a loop
  written here after their `pix2pix_model.py`: batch 1, one G forward per step, D on the detached output
  with the loss halved, then G (vanilla GAN loss + 100 x L1), Adam 2e-4 / (0.5, 0.999); evaluated as
  their test script does (training mode at batch 1: batch norm per image).
- `gankit_b1`: `gankit train configs/pix2pix_cpu.yaml` at batch 1 (the same networks, shown equal by
  benchmarks/parity/pix2pix.py; gankit's loop).
- `l1_b1`: the same with loss.adversarial=0 (the L1-only U-Net at batch 1).

Each is scored on the held-out pairs by the same code as `gankit eval` (L1, PSNR, SSIM against the
targets; FID and KID of the outputs against the targets, Inception). With both gankit arms in DIR,
triplets_b1.png shows ten held-out images (rows: input, L1-only, pix2pix, target). If `theirs` and `gankit_b1` agree,
the loop is not what separates pix2pix from the L1-only U-Net at this budget.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from translation_cifar10 import CIFAR, split, triplets  # noqa: E402

DEPTH, WIDTH = 5, 32  # configs/pix2pix_cpu.yaml


class TheirsAsTranslator(nn.Module):
    """The authors' G behind gankit's translator interface, run as their test script runs it: training
    mode, one image at a time (their batch norm then normalises each image by itself)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net, self.in_channels, self.out_channels, self.multiple, self.context = net, 1, 3, 2**DEPTH, 0

    def forward(self, x: torch.Tensor, y=None) -> torch.Tensor:
        self.net.train()
        return torch.cat([self.net(x[i:i + 1]) for i in range(len(x))])


def their_networks(ref, d_layers: int) -> tuple[nn.Module, nn.Module]:
    G = ref.UnetGenerator(1, 3, DEPTH, WIDTH, nn.BatchNorm2d, use_dropout=True)
    D = ref.NLayerDiscriminator(4, WIDTH, d_layers, nn.BatchNorm2d)

    def init(m: nn.Module) -> None:  # their init_weights('normal', 0.02)
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)

    G.apply(init)
    D.apply(init)
    return G, D


def train_theirs(ref_dir: Path, train_npz: Path, minutes: float, seed: int, out: Path) -> None:
    """Their recipe, in a loop written after their pix2pix_model.optimize_parameters."""
    sys.path.insert(0, str(ref_dir / "models"))
    import networks as ref

    from gankit.config import DataConfig, make_config
    from gankit.data import load_dataset
    from gankit.models import build_models, make_spec

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    ds = load_dataset(DataConfig(source=str(train_npz), pairs="grey"))
    cfg = make_config({}, [f"data.source={train_npz}", "data.pairs=grey", "model.family=pix2pix", "model.arch=unet",
                           f"model.depth={DEPTH}", f"model.width={WIDTH}", "model.sn_d=false"])
    _, ours_D = build_models(make_spec(cfg.model, ds.shape, 0, "pairs", 0.0, in_channels=ds.in_channels), "unet")
    d_layers = sum(1 for m in ours_D.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2))  # gankit's D at this size
    G, D = their_networks(ref, d_layers)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce, l1 = nn.BCEWithLogitsLoss(), nn.L1Loss()
    g = torch.Generator().manual_seed(seed)
    steps, t0, order = 0, time.perf_counter(), torch.randperm(len(ds), generator=g)
    G.train()
    D.train()
    while time.perf_counter() - t0 < 60 * minutes:
        i = order[steps % len(ds)]
        if steps % len(ds) == len(ds) - 1:
            order = torch.randperm(len(ds), generator=g)
        a = ds.inputs[i:i + 1].float() / 127.5 - 1.0
        b = ds.to_float(torch.tensor([int(i)]))
        fake = G(a)
        for p in D.parameters():
            p.requires_grad_(True)
        opt_d.zero_grad()
        pred_fake, pred_real = D(torch.cat([a, fake.detach()], 1)), D(torch.cat([a, b], 1))
        loss_d = 0.5 * (bce(pred_fake, torch.zeros_like(pred_fake)) + bce(pred_real, torch.ones_like(pred_real)))
        loss_d.backward()
        opt_d.step()
        for p in D.parameters():
            p.requires_grad_(False)
        opt_g.zero_grad()
        pred = D(torch.cat([a, fake], 1))
        loss_g = bce(pred, torch.ones_like(pred)) + 100.0 * l1(fake, b)
        loss_g.backward()
        opt_g.step()
        steps += 1
    torch.save({"G": G.state_dict(), "steps": steps, "d_layers": d_layers}, out / "theirs.pt")


def score_theirs(ref_dir: Path, test_npz: Path, out: Path, n: int) -> dict:
    sys.path.insert(0, str(ref_dir / "models"))
    import networks as ref

    from gankit.analysis.paired import evaluate_translation
    from gankit.config import DataConfig
    from gankit.data import load_dataset

    saved = torch.load(out / "theirs.pt", weights_only=True)
    G, _ = their_networks(ref, saved["d_layers"])
    G.load_state_dict(saved["G"])
    ds = load_dataset(DataConfig(source=str(test_npz), pairs="grey"))
    with torch.no_grad():
        res = evaluate_translation(TheirsAsTranslator(G), ds, ["l1", "psnr", "ssim", "fid", "kid"], n)
    return {k: res[k] for k in ("l1", "psnr", "ssim", "fid", "kid")} | {"steps": saved["steps"]}


def gankit_arm(train_npz: Path, run: Path, minutes: float, seed: int, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "gankit", "train", str(ROOT / "configs" / "pix2pix_cpu.yaml"), f"data.source={train_npz}",
           f"train.max_minutes={minutes}", f"train.seed={seed}", "train.threads=1", "train.batch_size=1", "train.log_every=1000",
           "train.sample_every=100000", "train.checkpoint_every=100000", *extra, "--out", str(run)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(run.with_suffix(".log"), "w"))


def score_gankit(run: Path, test_npz: Path, n: int) -> dict:
    from gankit import evaluate

    res = evaluate(run, n=n, real=str(test_npz))
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    return {k: res[k] for k in ("l1", "psnr", "ssim", "fid", "kid")} | {"steps": last["step"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", required=True)
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--arms", nargs="+", default=["theirs", "gankit_b1"], choices=["theirs", "gankit_b1", "l1_b1"])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--out", default="/tmp/p2p_loop")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    ref_dir = Path(a.ref)
    if not (ref_dir / "models" / "networks.py").is_file():
        raise SystemExit(f"--ref {ref_dir}: no models/networks.py there (a checkout of junyanz/pytorch-CycleGAN-and-pix2pix is expected)")
    train_npz, test_npz = split(CIFAR, out, 1000)
    if a.worker == "theirs":
        train_theirs(ref_dir, train_npz, a.minutes, a.seed, out)
        return
    procs = {}
    for arm in a.arms:
        if arm == "theirs":
            procs[arm] = subprocess.Popen([sys.executable, __file__, "--ref", a.ref, "--minutes", str(a.minutes), "--seed", str(a.seed),
                                           "--out", str(out), "--worker", "theirs"], stderr=open(out / "theirs.log", "w"))
        else:
            procs[arm] = gankit_arm(train_npz, out / arm, a.minutes, a.seed, ["loss.adversarial=0"] if arm == "l1_b1" else [])
    for arm, p in procs.items():
        if p.wait() != 0:
            raise SystemExit(f"{arm} failed: see {out}")
    torch.set_num_threads(2)
    results = {arm: (score_theirs(ref_dir, test_npz, out, a.n) if arm == "theirs" else score_gankit(out / arm, test_npz, a.n))
               for arm in a.arms}
    old = out / "loop_results.json"
    merged = (json.loads(old.read_text()) if old.exists() else {}) | {f"{arm}_s{a.seed}": r for arm, r in results.items()}
    old.write_text(json.dumps(merged, indent=1))
    ours = {arm: out / arm for arm in ("l1_b1", "gankit_b1") if (out / arm).is_dir()}
    if len(ours) == 2:  # rows: input, L1-only, pix2pix, target
        triplets(ours, test_npz, out / "triplets_b1.png")
    print("| arm | L1 | PSNR (dB) | SSIM | FID | KID | steps |\n|---|---|---|---|---|---|---|")
    for arm, r in merged.items():
        print(f"| {arm} | {r['l1']:.4f} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['fid']:.1f} | {r['kid']:.4f} | {r['steps']} |")


if __name__ == "__main__":
    main()
