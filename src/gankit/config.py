"""Typed, frozen run configuration: YAML presets plus `key.sub=value` overrides.

Every field carries a one-line docstring (the string under it). Validation happens in
`__post_init__` and names the key the user typed, before any work starts.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import ConfigError


def _check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {msg}")


TRANSLATION = ("pix2pix", "cyclegan")  # model families that translate images rather than generate them


@dataclass(frozen=True)
class DataConfig:
    source: str = "mnist5k"
    """A built-in source (`gankit datasets`) or a path: image folder, .npz/.npy, IDX, CSV."""
    resolution: int | tuple[int, int] | None = None
    """Square side length after resize (aspect kept, centre crop); [H, W]: a rectangle (translation data only);
    None keeps the native size."""
    channels: int | None = None
    """1 or 3; None keeps the data's own (RGBA is composited on white)."""
    on_bad_image: Literal["error", "skip"] = "error"
    """A file that cannot be decoded: stop with its name, or skip it and count it."""
    limit: int | None = None
    """Use only this many examples (a seeded random subset), for small-data experiments."""
    seed: int = 0
    """Seed for the subset chosen by `limit` and for generated toy data."""
    cache: bool = True
    """Image folders: keep the decoded array under $GANKIT_CACHE (memory-mapped; the next run on
    the same files, resolution and channels skips decoding)."""
    pairs: Literal["", "folders", "ab", "grey", "edges", "unpaired"] = ""
    """Translation data (model.family=pix2pix or cyclegan): folders: data.source holds A/ and B/ with matching
    file names; ab: each image is A and B side by side (pix2pix's format); grey / edges: any image source,
    the input made from each image (its luminance, or its edges) and the image itself the target; unpaired:
    A/ and B/ with any names and counts (cyclegan only; cyclegan trains on paired data too, A from the
    first half of the pairs and B from the second, so it never sees a pair). '': not translation data."""
    direction: Literal["AtoB", "BtoA"] = "AtoB"
    """Translation data from files (folders, ab, unpaired): translate A into B, or B into A."""
    jitter: float = 0.0
    """Translation: pix2pix's random jitter. Each training image is scaled up by this fraction (0.117: 256 to
    286 px), cropped back to its size at a random place and flipped left-right half the time; a pair's input
    and target alike (CycleGAN: each domain's image by itself). 0: off."""
    mirror: bool = False
    """Generation: x-flips (StyleGAN2-ADA's and R3GAN's --mirror=1): every image is also in the data
    mirrored left-right, so an epoch walks 2N images in a shuffled order (exact on resume and on any
    number of processes, as the order is). Evaluation compares with the images as they are."""

    def __post_init__(self) -> None:
        _check(self.size is None or all(4 <= s <= 1024 for s in self.size), "data.resolution", f"must be 4..1024, got {self.resolution}")
        _check(self.channels in (None, 1, 3), "data.channels", f"must be 1 or 3, got {self.channels}")
        _check(self.limit is None or self.limit > 0, "data.limit", f"must be positive, got {self.limit}")
        _check(bool(self.source), "data.source", "must not be empty")
        _check(self.direction == "AtoB" or self.pairs in ("folders", "ab", "unpaired"), "data.direction",
               "applies to translation files (data.pairs=folders, ab or unpaired) only")
        _check(0 <= self.jitter <= 1, "data.jitter", f"must be 0..1, got {self.jitter}")
        _check(self.jitter == 0 or bool(self.pairs), "data.jitter", "applies to translation data (data.pairs) only")
        _check(not self.mirror or not self.pairs, "data.mirror", "applies to generation; translation flips with data.jitter")

    @property
    def size(self) -> tuple[int, int] | None:
        """data.resolution as (height, width); None for the native size."""
        r = self.resolution
        return None if r is None else (r, r) if isinstance(r, int) else (int(r[0]), int(r[1]))


@dataclass(frozen=True)
class ModelConfig:
    family: Literal["gan", "vae", "pix2pix", "cyclegan"] = "gan"
    """gan: G against D. vae: a variational autoencoder whose decoder is this arch's G and
    whose encoder is its D with a 2*z_dim head (settings in the `vae` section). pix2pix: paired
    image-to-image translation (data.pairs), G an image-to-image network, D a PatchGAN judging input and output together.
    cyclegan: unpaired translation, two generators (A to B, B to A) and two PatchGANs, cycle consistency."""
    arch: str = "dcgan"
    """Architecture family: mlp (2D points), dcgan, resnet, r3gan (R3GAN's ConvNeXt-style nets), stylegan2,
    fastgan (few-shot, unconditional); `gankit archs` lists the resolutions and options of each."""
    z_dim: int = 128
    """Latent dimension."""
    width: int = 64
    """Base channel count (hidden units for mlp)."""
    depth: int = 3
    """Hidden layers (mlp); halvings of the image on the way down (unet: the training resolution must divide by 2**depth)."""
    conditional: bool = False
    """Class-conditional G (conditional batch norm) and projection D; needs labels."""
    sn_d: bool = True
    """Spectral norm on D's layers."""
    sn_g: bool = False
    """Spectral norm on G's layers."""
    norm_d: Literal["auto", "batch", "none"] = "auto"
    """Batch norm in the DCGAN D. auto: when D has no spectral norm, except with a gradient
    penalty (a WGAN-GP critic must judge each sample alone)."""
    pac: int = 1
    """PacGAN packing: D judges `pac` samples at once (PacGAN, NeurIPS 2018)."""
    d_extra: int = 0
    """dcgan only: 3x3 convs (same width) after each of D's strided convs. 0 is DCGAN's D;
    1 is close to SNGAN's "standard CNN" D, twice as deep (stacked MNIST at PacGAN 4: about
    100 ms a step instead of 77 on 2 cores)."""
    g_extra: int = 0
    """dcgan only: 3x3 convs (same width, batch norm, ReLU) after G's first layer and each of its
    upsampling convs but the last. 0 is DCGAN's G. On stacked MNIST (seed 1, 13,000 steps in
    the 29-minute budget, PacGAN 4) 1 dropped modes: 978 of 1000, KL 0.525 against 0.156 without it."""

    widths: tuple[int, ...] = ()
    """r3gan only: channels per stage from 4x4 up (one value: every stage; empty: 2 x model.width)."""
    blocks: tuple[int, ...] = ()
    """r3gan only: residual blocks per stage from 4x4 up (one value: every stage; empty: 1 each)."""
    style_mixing: float = 0.0
    """stylegan2 only: probability that a training batch mixes two latents' styles at a random layer (StyleGAN2: 0.9)."""

    def __post_init__(self) -> None:
        _check(all(w >= 1 for w in self.widths), "model.widths", f"must be >= 1, got {list(self.widths)}")
        _check(all(b >= 0 for b in self.blocks), "model.blocks", f"must be >= 0, got {list(self.blocks)}")
        _check(0 <= self.style_mixing <= 1, "model.style_mixing", f"must be in [0, 1], got {self.style_mixing}")
        _check(1 <= self.z_dim <= 4096, "model.z_dim", f"must be 1..4096, got {self.z_dim}")
        _check(1 <= self.width <= 4096, "model.width", f"must be 1..4096, got {self.width}")
        _check(1 <= self.depth <= 32, "model.depth", f"must be 1..32, got {self.depth}")
        _check(1 <= self.pac <= 16, "model.pac", f"must be 1..16, got {self.pac}")
        _check(0 <= self.d_extra <= 4, "model.d_extra", f"must be 0..4, got {self.d_extra}")
        _check(0 <= self.g_extra <= 4, "model.g_extra", f"must be 0..4, got {self.g_extra}")
        _check(not (self.pac > 1 and self.conditional), "model.pac", "packing is not supported with model.conditional=true")


@dataclass(frozen=True)
class LossConfig:
    name: str = "hinge"
    """Adversarial loss: ns (non-saturating), hinge, wgan, lsgan, rpgan (relativistic pairing, R3GAN's)."""
    gp: float = 0.0
    """WGAN gradient-penalty weight (on interpolates, target norm 1)."""
    r1: float = 0.0
    """R1 penalty weight (squared gradient norm of D on real data)."""
    r2: float = 0.0
    """R2 penalty weight (squared gradient norm of D on generated data; R3GAN pairs it with R1)."""
    r1_every: int = 1
    """Lazy R1 (StyleGAN2): apply the penalty (and R2) on every k-th D step only, with weight r1 * k."""
    recon: float = 1.0
    """fastgan only: weight of D's self-supervised reconstruction loss on real images (0: off)."""
    pl_weight: float = 0.0
    """stylegan2 only: path-length regularisation of G (StyleGAN2: 2; its CIFAR-10 recipe: 0)."""
    pl_every: int = 4
    """Lazy path-length regularisation: every k-th G step, with weight pl_weight * k."""
    l1: float = 100.0
    """Translation (pix2pix): weight of G's L1 distance to the target (pix2pix: 100)."""
    adversarial: float = 1.0
    """Translation: weight of G's adversarial term; pix2pix with 0 trains G on the L1 term alone, with no D step (a plain
    U-Net regressor). gankit's lsgan G term is 0.5 (D(G(x)) - 1)^2: CycleGAN's weighting is loss.adversarial=2."""
    cycle: float = 10.0
    """cyclegan: weight of the cycle-consistency L1 terms |G_BA(G_AB(a)) - a| and |G_AB(G_BA(b)) - b| (CycleGAN: 10)."""
    identity: float = 0.5
    """cyclegan: weight of the identity terms |G_AB(b) - b| and |G_BA(a) - a|, as a fraction of loss.cycle (CycleGAN: 0.5);
    needs the same channel count in both domains."""
    pool: int = 50
    """cyclegan: earlier generated images each D is shown (half of the time one of them instead of the newest; CycleGAN: 50)."""

    def __post_init__(self) -> None:
        _check(self.gp >= 0, "loss.gp", f"must be >= 0, got {self.gp}")
        _check(self.r1 >= 0, "loss.r1", f"must be >= 0, got {self.r1}")
        _check(self.r2 >= 0, "loss.r2", f"must be >= 0, got {self.r2}")
        _check(self.r1_every >= 1, "loss.r1_every", f"must be >= 1, got {self.r1_every}")
        _check(self.recon >= 0, "loss.recon", f"must be >= 0, got {self.recon}")
        _check(self.pl_weight >= 0, "loss.pl_weight", f"must be >= 0, got {self.pl_weight}")
        _check(self.pl_every >= 1, "loss.pl_every", f"must be >= 1, got {self.pl_every}")
        _check(self.l1 >= 0, "loss.l1", f"must be >= 0, got {self.l1}")
        _check(self.adversarial >= 0, "loss.adversarial", f"must be >= 0, got {self.adversarial}")
        _check(self.cycle >= 0, "loss.cycle", f"must be >= 0, got {self.cycle}")
        _check(self.identity >= 0, "loss.identity", f"must be >= 0, got {self.identity}")
        _check(0 <= self.pool <= 10000, "loss.pool", f"must be 0..10000, got {self.pool}")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000
    """Run length in generator steps."""
    batch_size: int = 64
    """Images (or points) per step, for real and for generated data alike."""
    seed: int = 0
    """Seed for weights, latents, data order and augmentation."""
    lr_g: float = 2e-4
    """Generator learning rate (Adam)."""
    lr_d: float = 2e-4
    """Discriminator learning rate (Adam)."""
    betas_g: tuple[float, float] = (0.5, 0.999)
    """Generator Adam betas."""
    betas_d: tuple[float, float] = (0.5, 0.999)
    """Discriminator Adam betas."""
    lr_decay: Literal["none", "linear", "cosine", "half_linear"] = "none"
    """Learning-rate schedule over the run (both networks); half_linear: constant for the first half, then linearly to 0 (pix2pix)."""
    max_minutes: float = 0.0
    """Wall-clock budget: stop (saving as at the last step) once training has taken this long; 0: no limit."""
    d_steps: int = 1
    """Discriminator steps per generator step."""
    ema_halflife: float = 10000.0
    """Half-life of the G_ema weights, in generated images (G steps x batch_size); 0 disables
    averaging (G_ema = G). 10,000 at batch 64 is about 156 steps."""
    ema_rampup: float = 0.05
    """Cap the half-life at this fraction of the images generated so far (StyleGAN2-ADA's
    ema_rampup), so a short run's G_ema is not still its random start; 0: the full half-life at once."""
    ema_start: int = 0
    """Generator step at which averaging starts (G_ema copies G before it)."""
    log_every: int = 100
    """Steps between lines of metrics.jsonl."""
    sample_every: int = 500
    """Steps between fixed-seed sample grids in samples/."""
    checkpoint_every: int = 1000
    """Steps between checkpoints (one is always written at the end)."""
    keep_checkpoints: int = 3
    """How many of the newest checkpoints to keep (at least 2)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train; auto picks cuda when available."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """bf16 runs the networks under autocast; weights and optimiser stay fp32."""
    channels_last: bool = False
    """Use the channels_last memory format for image models."""
    compile: bool = False
    """torch.compile G and D (not with a double-backward penalty)."""
    threads: int = 0
    """CPU threads for torch (0: the cores idle when the run starts, at least one; under torchrun, or with
    OMP_NUM_THREADS set, torch's own setting)."""
    on_failure: Literal["warn", "stop", "rollback"] = "warn"
    """What a health finding or repeated non-finite steps do."""
    max_rollbacks: int = 3
    """Rollbacks allowed before the run stops."""
    max_nonfinite: int = 5
    """Non-finite steps in a row before rolling back (or stopping)."""
    snapshot_every: int = 0
    """2D runs: steps between the small snapshots of the live view (D's field, G's gradients) in
    snapshots.jsonl; 0: with every grid (train.sample_every). Image runs write none."""

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size", "d_steps", "log_every", "sample_every", "checkpoint_every"):
            v = getattr(self, key)
            _check(v >= 1, f"train.{key}", f"must be >= 1, got {v}")
        _check(self.keep_checkpoints >= 2, "train.keep_checkpoints", f"must be >= 2 (the newest may be half written), got {self.keep_checkpoints}")
        for key in ("lr_g", "lr_d"):
            v = getattr(self, key)
            _check(0 < v < 1, f"train.{key}", f"must be in (0, 1), got {v}")
        for key in ("betas_g", "betas_d"):
            b = getattr(self, key)
            _check(len(b) == 2 and all(0 <= x < 1 for x in b), f"train.{key}", f"must be two numbers in [0, 1), got {list(b)}")
        _check(self.ema_halflife >= 0, "train.ema_halflife", f"must be >= 0, got {self.ema_halflife}")
        _check(0 <= self.ema_rampup <= 1, "train.ema_rampup", f"must be in [0, 1], got {self.ema_rampup}")
        _check(self.max_minutes >= 0, "train.max_minutes", f"must be >= 0, got {self.max_minutes}")
        _check(0 <= self.threads <= 1024, "train.threads", f"must be 0..1024, got {self.threads}")
        _check(self.max_rollbacks >= 0, "train.max_rollbacks", f"must be >= 0, got {self.max_rollbacks}")
        _check(self.max_nonfinite >= 1, "train.max_nonfinite", f"must be >= 1, got {self.max_nonfinite}")
        _check(self.snapshot_every >= 0, "train.snapshot_every", f"must be >= 0, got {self.snapshot_every}")


@dataclass(frozen=True)
class EvalConfig:
    every: int = 0
    """Evaluate during training every this many steps (0: never)."""
    n: int = 1000
    """Generated samples per evaluation during training."""
    metrics: tuple[str, ...] = ("fid",)
    """Metrics computed during training (those of `gankit eval`; a translation run: of l1, psnr, ssim, fid, kid, cycle)."""
    features: str = "classifier"
    """Feature network for evaluation during training: classifier or inception (a translation run: always inception)."""
    real: str = ""
    """Real data to evaluate against during training ('': the training data), read at the run's resolution and
    channels; for a translation run, held-out pairs read as the training pairs are (the same data.pairs)."""

    def __post_init__(self) -> None:
        _check(self.every >= 0, "eval.every", f"must be >= 0, got {self.every}")
        _check(self.n >= 10, "eval.n", f"must be >= 10, got {self.n}")


@dataclass(frozen=True)
class AugmentConfig:
    policy: str = ""
    """DiffAugment ops, comma separated: color, translation, cutout ('' disables)."""
    p: float = 1.0
    """Probability of augmenting each image (the start value when adaptive)."""
    adaptive: bool = False
    """ADA-style: adjust p so that r_t = E[sign(D(real))] stays near `target`."""
    target: float = 0.6
    """Target r_t for the adaptive probability."""
    speed_kimg: float = 100.0
    """Thousands of images for p to go from 0 to 1 when adapting."""

    def __post_init__(self) -> None:
        _check(0 <= self.p <= 1, "augment.p", f"must be in [0, 1], got {self.p}")
        _check(0 < self.target < 1, "augment.target", f"must be in (0, 1), got {self.target}")
        ops = [o for o in self.policy.split(",") if o]
        bad = [o for o in ops if o not in ("color", "translation", "cutout")]
        _check(not bad, "augment.policy", f"unknown op(s) {bad}; choose from color, translation, cutout")
        _check(not (self.adaptive and not ops), "augment.adaptive", "needs a non-empty augment.policy")


@dataclass(frozen=True)
class VAEConfig:
    likelihood: Literal["gaussian", "bernoulli"] = "gaussian"
    """Decoder likelihood: gaussian on [-1, 1] pixels, or bernoulli on [0, 1] intensities."""
    sigma: float = 0.0
    """Gaussian std in [-1, 1] pixel units; 0 learns it (the closed-form optimum per batch, sigma-VAE)."""
    beta: float = 1.0
    """Weight of the KL term (beta-VAE); the reported ELBO always uses 1."""
    kl_warmup: int = 0
    """Steps over which the KL weight rises linearly from 0 to beta (0: no warm-up)."""

    def __post_init__(self) -> None:
        _check(self.sigma >= 0, "vae.sigma", f"must be >= 0 (0: learned), got {self.sigma}")
        _check(self.beta >= 0, "vae.beta", f"must be >= 0, got {self.beta}")
        _check(self.kl_warmup >= 0, "vae.kl_warmup", f"must be >= 0, got {self.kl_warmup}")


@dataclass(frozen=True)
class ScheduleConfig:
    images: int = 0
    """Images shown to D over which the values below move from their start to their end on a half
    cosine (R3GAN's schedules), then stay; 0: no schedule."""
    lr: float = 1.0
    """Final learning rates as a fraction of train.lr_g and train.lr_d (R3GAN: 0.25, 2e-4 to 5e-5)."""
    penalty: float = 1.0
    """Final weights of loss.r1, loss.r2 and loss.gp as a fraction of theirs (R3GAN: 0.1)."""
    beta2: float | None = None
    """Final Adam beta2 of both networks, from train.betas_g / betas_d (R3GAN: 0.9 to 0.99); null: fixed."""
    augment_p: float | None = None
    """Final augment.p, from augment.p (R3GAN, CIFAR-10: 0 to 0.55); null: fixed."""

    def __post_init__(self) -> None:
        _check(self.images >= 0, "schedule.images", f"must be >= 0, got {self.images}")
        _check(0 < self.lr <= 10, "schedule.lr", f"must be in (0, 10], got {self.lr}")
        _check(0 <= self.penalty <= 10, "schedule.penalty", f"must be in [0, 10], got {self.penalty}")
        _check(self.beta2 is None or 0 <= self.beta2 < 1, "schedule.beta2", f"must be in [0, 1), got {self.beta2}")
        _check(self.augment_p is None or 0 <= self.augment_p <= 1, "schedule.augment_p", f"must be in [0, 1], got {self.augment_p}")
        moved = self.lr != 1.0 or self.penalty != 1.0 or self.beta2 is not None or self.augment_p is not None
        _check(self.images > 0 or not moved, "schedule.images", "is 0 (no schedule), but end values are set: give the images to anneal over")


@dataclass(frozen=True)
class LogConfig:
    report: bool = True
    """Write report.html into the run folder at every checkpoint and at the end."""
    tensorboard: bool = False
    """Also write TensorBoard scalars and grids to tensorboard/ (pip install "gankit[tensorboard]")."""


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    """What to train on."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The networks."""
    loss: LossConfig = field(default_factory=LossConfig)
    """Adversarial loss and regularisers."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The loop."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation during training."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Differentiable augmentation of D's inputs."""
    vae: VAEConfig = field(default_factory=VAEConfig)
    """The VAE's likelihood and KL weight (used when model.family=vae)."""
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    """Values annealed over the run (learning rates, beta2, penalties, augmentation p)."""
    log: LogConfig = field(default_factory=LogConfig)
    """What the run writes for people to look at besides metrics.jsonl and grids."""

    def __post_init__(self) -> None:
        translating = self.model.family in TRANSLATION
        if isinstance(self.data.resolution, tuple) and not translating:
            raise ConfigError(f"data.resolution: [H, W] (a rectangle) is for translation (model.family=pix2pix or cyclegan); "
                              f"model.family={self.model.family} trains square images, got {list(self.data.resolution)}")
        if translating != bool(self.data.pairs):
            raise ConfigError(f"data.pairs: model.family={self.model.family} needs paired data: set data.pairs to folders, ab, grey or edges"
                              if translating else f"data.pairs: paired data is for translation (model.family=pix2pix), not model.family={self.model.family}")
        if self.model.family == "pix2pix" and self.data.pairs == "unpaired":
            raise ConfigError("data.pairs: pix2pix learns from pairs; unpaired data (A/ and B/ with any names) is for model.family=cyclegan")
        if self.model.family == "pix2pix" and self.loss.l1 == 0 and self.loss.adversarial == 0:
            raise ConfigError("loss.l1: and loss.adversarial are both 0: G would learn nothing")
        if self.model.family == "cyclegan" and self.train.compile:
            raise ConfigError("train.compile: not supported for model.family=cyclegan (four networks called in turn)")
        if self.model.family == "cyclegan" and self.loss.adversarial == 0:
            raise ConfigError("loss.adversarial: cyclegan learns from its discriminators; it must be > 0")
        if translating:
            for bad, key in ((self.model.conditional, "model.conditional"), (self.model.pac != 1, "model.pac"),
                             (bool(self.augment.policy), "augment.policy"), (self.loss.gp > 0, "loss.gp"), (self.loss.r1 > 0, "loss.r1"),
                             (self.loss.r2 > 0, "loss.r2"), (self.train.d_steps != 1, "train.d_steps"),
                             (self.schedule.images > 0, "schedule.images")):
                if bad:
                    raise ConfigError(f"{key}: not used by model.family={self.model.family} (image-to-image translation); remove it")
        if self.model.family == "vae":
            for bad, key in ((self.model.arch == "mlp", "model.arch"), (self.model.conditional, "model.conditional"),
                             (self.model.pac != 1, "model.pac"), (bool(self.augment.policy), "augment.policy"),
                             (self.loss.gp > 0, "loss.gp"), (self.loss.r1 > 0, "loss.r1"), (self.loss.r2 > 0, "loss.r2"), (self.train.d_steps != 1, "train.d_steps")):
                if bad:
                    raise ConfigError(f"{key}: not used by model.family=vae (an unconditional image VAE); remove it or train a gan")
        if self.train.compile and (self.loss.gp > 0 or self.loss.r1 > 0 or self.loss.r2 > 0 or self.loss.pl_weight > 0):
            raise ConfigError("train.compile: torch.compile cannot differentiate twice; turn it off or set loss.gp, loss.r1, loss.r2 and loss.pl_weight to 0")
        if self.loss.pl_weight > 0 and self.model.arch != "stylegan2":
            raise ConfigError(f"loss.pl_weight: path-length regularisation needs model.arch=stylegan2 (its mapping network), not {self.model.arch}")
        if self.model.arch == "mlp" and self.augment.policy:
            raise ConfigError("augment.policy: image augmentation does not apply to model.arch=mlp (2D points)")
        if self.schedule.augment_p is not None and (self.augment.adaptive or not self.augment.policy):
            raise ConfigError("schedule.augment_p: needs augment.policy and a fixed probability (augment.adaptive=false)")
        if self.train.batch_size % self.model.pac:
            raise ConfigError(f"train.batch_size: {self.train.batch_size} is not a multiple of model.pac={self.model.pac}")

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


def _plain(x: Any) -> Any:
    """Tuples to lists so that YAML and JSON stay plain."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check (and gently convert) a YAML value against a field's type hint."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} values, got {list(value)}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML reads 1e-4 (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(number):
            raise ConfigError(f"{key}: must be a finite number, got {value!r}")
        return number
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp} for {key}")


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for k, v in values.items():
        key = f"{prefix}{k}"
        if k not in names:
            raise ConfigError(f"{key}: unknown key; valid keys here: {', '.join(sorted(names))}")
        tp = hints[k]
        if dataclasses.is_dataclass(tp):
            if not isinstance(v, dict):
                raise ConfigError(f"{key}: expected a mapping of sub-keys, got {v!r}")
            kwargs[k] = _build(tp, v, f"{key}.")
        else:
            kwargs[k] = _coerce(v, tp, key)
    return cls(**kwargs)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{dotted}: {p} is not a section")
        node = nxt
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    shown = text if text.isprintable() else repr(text)  # error messages stay on one line
    if "=" not in text:
        raise ConfigError(f"{shown}: an override must look like key.sub=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or "." not in key or not key.isprintable():
        named = key if key and key.isprintable() else shown
        raise ConfigError(f"{named}: an override must look like section.key=value (for example train.steps=100)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of sections at the top level")
    return data


def make_config(tree: dict[str, Any] | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Build a validated Config from a nested dict plus `key.sub=value` overrides."""
    tree = _deep_copy(tree or {})
    for o in overrides:
        k, v = parse_override(o)
        _set_dotted(tree, k, v)
    try:
        return _build(Config, tree, "")
    except TypeError as e:  # a dataclass refused its arguments
        raise ConfigError(str(e)) from None


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    return make_config(load_yaml(path) if path else {}, overrides)


def _deep_copy(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in tree.items()}


def dump_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
