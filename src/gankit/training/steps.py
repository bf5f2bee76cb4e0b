"""One training step of each model family (GAN, VAE), chosen by `model.family` from a registry.

A step takes the run's state and the tools the loop set up once, accumulates gradients with an
ordinary backward, averages them over processes while backward runs (`Tools.backward_mean`), checks them, and steps
the optimisers. It returns whether the step counted and its statistics (device tensors).
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from ..artefact.sampling import latents
from ..data import Dataset
from ..losses import LOSSES, Loss, d_accuracy, generator_loss, gradient_penalty, path_length_penalty, path_lengths, r1_penalty, r2_penalty, rt_logits
from ..models.layers import noise_inputs, per_sample_noise
from ..models.vae import encode, kl_weight, reparameterise, vae_terms
from ..registry import Registry
from .batches import Batches
from .dist import GradSync, World
from .guard import FiniteGuard
from .state import RunState

Stats = dict[str, torch.Tensor]
STEPS: Registry = Registry("model family", "model.family")


def pack(x: torch.Tensor, pac: int) -> torch.Tensor:
    """PacGAN: [B, C, ...] -> [B / pac, pac * C, ...], so D judges pac samples jointly."""
    return x if pac == 1 else x.reshape(x.shape[0] // pac, pac * x.shape[1], *x.shape[2:])


def grad_norm(params: list[torch.Tensor]) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


@dataclass
class Tools:
    """What a step needs besides the run's state, set up once by the loop."""

    G: nn.Module  # the training forward of G (compiled when train.compile)
    D: nn.Module
    loss: Loss
    batches: Batches
    guard: FiniteGuard
    world: World
    autocast: Callable
    mine: slice  # this process's rows of the global batch
    g_params: list[torch.Tensor]
    d_params: list[torch.Tensor]
    noise_layers: list[nn.Module]  # G's noise inputs (`models.layers.noise_inputs`), found once
    syncs: dict[str, GradSync] = field(default_factory=dict)  # one per parameter set, made at first use

    @classmethod
    def for_run(cls, p: RunState, ds: Dataset, world: World) -> Tools:
        """The tools of run `p`: every batch is the global batch's share of this process (rows
        `world.share(train.batch_size)`); bf16 autocast and torch.compile as the config says."""
        t, dev = p.cfg.train, p.device
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
        autocast = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if t.precision == "bf16" else nullcontext
        return cls(torch.compile(p.G) if t.compile else p.G, torch.compile(p.D) if t.compile else p.D, LOSSES.get(p.cfg.loss.name),
                   Batches(ds, dev, t.channels_last, p.spec.num_classes > 0), FiniteGuard(dev), world, autocast,
                   world.share(t.batch_size), list(p.G.parameters()), list(p.D.parameters()), noise_inputs(p.G))

    def backward_mean(self, name: str, params: list[torch.Tensor], loss: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """Backward of `loss` (plus `extra`, a regulariser whose value is not reported); on several
        processes the gradients of `params` are averaged over ranks while backward runs (`GradSync`).
        Returns the loss's mean over ranks."""
        total = loss if extra is None else loss + extra
        if not self.world.multi:
            total.backward()
            return loss
        if name not in self.syncs:
            self.syncs[name] = GradSync(self.world, params)
        sync = self.syncs[name]
        sync.arm()
        total.backward()
        return sync.finish(loss)

    def D_packed(self, p: RunState, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.D(pack(x, p.cfg.model.pac), y)

    def D_of(self, p: RunState, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.D_packed(p, p.augment(x), y)


@STEPS.register("gan")
def gan_step(p: RunState, k: Tools) -> tuple[bool, Stats]:
    """d_steps D steps (real against generated, plus regularisers), then one G step with D frozen.
    The last D step's fake batch keeps its graph and is reused by the G step (as the textbook
    DCGAN does): one G forward pass per step instead of two."""
    t, B, world = p.cfg.train, p.cfg.train.batch_size, k.world
    g_params, d_params = k.g_params, k.d_params
    for i in range(t.d_steps):
        real, y = k.batches.real(p.order.next(B)[k.mine])
        with torch.set_grad_enabled(i == t.d_steps - 1), k.autocast():
            fake_g = fake_batch(p, k, B, y)
        fake = fake_g.detach()
        with k.autocast():
            real_logits, recon = real_side(p, k, B, real, y)
            fake_logits = k.D_of(p, fake, y).float()
            loss_d = k.loss.d(real_logits, fake_logits)
            if recon is not None:
                loss_d = loss_d + p.cfg.loss.recon * recon
        loss_d = loss_d + d_penalties(p, k, B, p.step * t.d_steps + i, real, fake, y)
        p.opt_d.zero_grad(set_to_none=True)
        loss_d = k.backward_mean("d", d_params, loss_d)  # gradients and the loss: means over ranks
        gn_d = grad_norm(d_params)
        if not k.guard.ok(loss_d, gn_d):
            return False, {}
        k.guard.step(p.opt_d)
        if p.augment.active:
            p.augment.observe(rt_logits(real_logits, fake_logits, k.loss.relativistic), world.sum)
        p.images += B

    # G step: D frozen so its weight gradients are not computed; generated classes follow the real batch's
    p.D.requires_grad_(False)
    with k.autocast():
        # a relativistic loss pairs them with D's logits on the same real batch (D is frozen: no gradient into it)
        loss_g = generator_loss(k.loss, k.D_of(p, fake_g, y).float(), lambda: k.D_of(p, real, y).float())
    pl = path_length_term(p, k, B, y) if p.cfg.loss.pl_weight > 0 and p.step % p.cfg.loss.pl_every == 0 else None
    p.opt_g.zero_grad(set_to_none=True)
    loss_g = k.backward_mean("g", g_params, loss_g, extra=pl)
    p.D.requires_grad_(True)
    gn_g = grad_norm(g_params)
    if not k.guard.ok(loss_g, gn_g):
        return False, {}
    k.guard.step(p.opt_g)
    r, f = real_logits.detach(), fake_logits.detach()
    return True, k.guard.masked({
        "loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "d_real": r.mean(), "d_fake": f.mean(),
        "d_acc": d_accuracy(r, f, k.loss.relativistic), "r_t": torch.sign(rt_logits(r, f, k.loss.relativistic)).mean(),
        "grad_norm_d": gn_d, "grad_norm_g": gn_g, **({"recon": recon.detach()} if recon is not None else {}),
    })


def d_penalties(p: RunState, k: Tools, B: int, d_step: int, real: torch.Tensor, fake: torch.Tensor,
                y: torch.Tensor | None) -> torch.Tensor | float:
    """D's regularisers at D step number `d_step`, weighted (the schedule may anneal the weights): the
    gradient penalty, and lazy R1 / R2: every k-th D step, k times the weight, folded into that step
    (k optimiser steps per k batches, so StyleGAN2-ADA's learning-rate and beta rescaling for its extra
    step does not apply). R1 / R2's gradient is taken on the un-augmented images, through the
    augmentation, as R3GAN and StyleGAN2-ADA do."""
    w, every, total = p.now, p.cfg.loss.r1_every, 0.0
    D_seen = lambda x, yy: k.D_of(p, x, yy)  # noqa: E731  (augmentation included)
    if w.gp > 0:
        eps = torch.rand(B)[k.mine]  # interpolation weights of the global batch
        D_packed = lambda x, yy: k.D_packed(p, x, yy)  # noqa: E731
        total = total + w.gp * gradient_penalty(D_packed, p.augment(real), p.augment(fake.float()), y, eps)
    if w.r1 > 0 and d_step % every == 0:
        total = total + w.r1 * every * r1_penalty(D_seen, real, y)
    if w.r2 > 0 and d_step % every == 0:
        total = total + w.r2 * every * r2_penalty(D_seen, fake.float(), y)
    return total


def real_side(p: RunState, k: Tools, B: int, real: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """D's logits on the real batch; for a self-supervised D (fastgan) with `loss.recon` on, also its
    reconstruction loss (the quadrant each image's part-decoder rebuilds is drawn for the global batch)."""
    if p.cfg.loss.recon <= 0 or not hasattr(p.D, "reconstruct"):
        return k.D_of(p, real, y).float(), None
    x = pack(p.augment(real), p.cfg.model.pac)
    part = torch.randint(4, (B,), generator=p.latent_gen)[k.mine][: x.shape[0]]
    logits, recon = p.D.reconstruct(x, part)
    return logits.float(), recon


def fake_batch(p: RunState, k: Tools, B: int, y: torch.Tensor | None) -> torch.Tensor:
    """G's batch for this process: latents drawn for the global batch; with `model.style_mixing`, a
    second latent and a cutoff layer, and for G's noise inputs one seed per sample, drawn (also for
    the global batch) from the same stream: any number of processes generate the same samples."""
    z = k.batches.send(latents(B, p.spec.z_dim, p.latent_gen)[k.mine])
    mix = None
    if p.cfg.model.style_mixing > 0:
        z2 = k.batches.send(latents(B, p.spec.z_dim, p.latent_gen)[k.mine])
        cutoff = int(torch.randint(1, p.G.num_ws, (), generator=p.latent_gen))
        if float(torch.rand((), generator=p.latent_gen)) >= p.cfg.model.style_mixing:
            cutoff = p.G.num_ws  # no mixing this batch
        mix = (z2, cutoff)
    with per_sample_noise(k.noise_layers, noise_seeds(p, k, B, k.mine)):
        return k.G(z, y) if mix is None else k.G(z, y, mix=mix)


def jitter_of(p: RunState, k: Tools, B: int) -> tuple[float, torch.Tensor | None]:
    """data.jitter and, when on, a seed per sample drawn for the global batch (this process's rows) from
    the run's latent stream: resumed exactly, the same on any number of processes."""
    scale = p.cfg.data.jitter
    return scale, (torch.randint(0, 2**62, (B,), generator=p.latent_gen)[k.mine] if scale > 0 else None)


def noise_seeds(p: RunState, k: Tools, n: int, rows: slice) -> torch.Tensor | None:
    """Seeds for G's noise inputs (`models.layers.per_sample_noise`), drawn for a global batch of n;
    this process's `rows`. None when G has no noise inputs (its latent stream stays as it was)."""
    if not k.noise_layers:
        return None
    return torch.randint(0, 2**62, (n,), generator=p.latent_gen)[rows]


def path_length_term(p: RunState, k: Tools, B: int, y: torch.Tensor | None) -> torch.Tensor:
    """Lazy path-length regularisation (StyleGAN2): on half the global batch (latents, labels, G's
    noise and the image-shaped noise drawn for it, this process's rows taken), weight
    pl_weight * pl_every; the running mean of the lengths (`p.extra["pl_mean"]`) is the same on every rank."""
    n = B // 2 if (B // 2) % k.world.size == 0 and B >= 2 else B
    rows = k.world.share(n)
    z = k.batches.send(latents(n, p.spec.z_dim, p.latent_gen)[rows])
    y_pl = k.batches.send(torch.randint(0, p.spec.num_classes, (n,), generator=p.latent_gen)[rows]) if y is not None else None
    noise = k.batches.send(torch.randn((n, *p.spec.shape), generator=p.latent_gen)[rows])
    with k.autocast(), per_sample_noise(k.noise_layers, noise_seeds(p, k, n, rows)):
        lengths = path_lengths(p.G, z, y_pl, noise)
    mean = k.world.mean({"pl": lengths.detach().mean()})["pl"]
    target = torch.as_tensor(p.extra.get("pl_mean", 0.0), dtype=mean.dtype, device=mean.device).lerp(mean, 0.01)
    p.extra["pl_mean"] = float(target)
    return path_length_penalty(lengths, target) * p.cfg.loss.pl_weight * p.cfg.loss.pl_every


@STEPS.register("vae")
def vae_step(p: RunState, k: Tools) -> tuple[bool, Stats]:
    """One step on the negative ELBO: encoder (in D) and decoder (G) together."""
    B = p.cfg.train.batch_size
    g_params, d_params = k.g_params, k.d_params
    real, _ = k.batches.real(p.order.next(B)[k.mine])
    with k.autocast():
        mu, logvar = encode(k.D, real)
        recon = k.G(reparameterise(mu, logvar, p.latent_gen, B, k.mine), None)
    terms = vae_terms(real, recon, mu, logvar, p.cfg.vae)
    loss_v = terms["recon"] + kl_weight(p.cfg.vae, p.step) * terms["kl"]
    p.opt_g.zero_grad(set_to_none=True)
    p.opt_d.zero_grad(set_to_none=True)
    loss_v = k.backward_mean("vae", g_params + d_params, loss_v)
    gn_g, gn_e = grad_norm(g_params), grad_norm(d_params)
    if not k.guard.ok(loss_v, gn_g, gn_e):
        return False, {}
    k.guard.step(p.opt_g)
    k.guard.step(p.opt_d)
    p.images += B
    return True, {"loss": loss_v.detach(), **{n: v.detach() for n, v in terms.items()}, "grad_norm_g": gn_g, "grad_norm_enc": gn_e}


@STEPS.register("pix2pix")
def pix2pix_step(p: RunState, k: Tools) -> tuple[bool, Stats]:
    """Paired translation (pix2pix): one D step on (input, target) against (input, G(input)), then one G
    step on the adversarial term plus loss.l1 times the L1 distance to the target. With
    loss.adversarial=0 there is no D step: G is a plain L1 regressor."""
    B, adv = p.cfg.train.batch_size, p.cfg.loss.adversarial
    a, b = k.batches.pair(p.order.next(B)[k.mine], *jitter_of(p, k, B))
    with k.autocast(), per_sample_noise(k.noise_layers, noise_seeds(p, k, B, k.mine)):  # dropout masks drawn for the global batch
        fake = k.G(a, None)
    stats: Stats = {}
    if adv > 0:
        with k.autocast():
            real_logits = k.D(torch.cat([a, b], 1), None).float()
            fake_logits = k.D(torch.cat([a, fake.detach()], 1), None).float()
            loss_d = k.loss.d(real_logits, fake_logits)
        p.opt_d.zero_grad(set_to_none=True)
        loss_d = k.backward_mean("d", k.d_params, loss_d)
        gn_d = grad_norm(k.d_params)
        if not k.guard.ok(loss_d, gn_d):
            return False, {}
        k.guard.step(p.opt_d)
        r, f = real_logits.detach(), fake_logits.detach()
        stats = {"loss_d": loss_d.detach(), "d_real": r.mean(), "d_fake": f.mean(), "d_acc": d_accuracy(r, f, k.loss.relativistic),
                 "grad_norm_d": gn_d}
    l1 = (fake.float() - b).abs().mean()
    loss_g = p.cfg.loss.l1 * l1
    if adv > 0:
        p.D.requires_grad_(False)
        with k.autocast():
            loss_g = loss_g + adv * generator_loss(k.loss, k.D(torch.cat([a, fake], 1), None).float(),
                                                   lambda: k.D(torch.cat([a, b], 1), None).float())
    p.opt_g.zero_grad(set_to_none=True)
    loss_g = k.backward_mean("g", k.g_params, loss_g)
    p.D.requires_grad_(True)
    gn_g = grad_norm(k.g_params)
    if not k.guard.ok(loss_g, gn_g):
        return False, {}
    k.guard.step(p.opt_g)
    p.images += B
    return True, k.guard.masked({**stats, "loss_g": loss_g.detach(), "l1": l1.detach(), "grad_norm_g": gn_g})


@STEPS.register("cyclegan")
def cyclegan_step(p: RunState, k: Tools) -> tuple[bool, Stats]:
    """Unpaired translation (CycleGAN): one G step on both generators (adversarial terms against both
    discriminators, loss.cycle times the cycle-consistency L1s, loss.identity of that times the identity
    L1s), then one D step, each D judging its domain's real images against generated ones drawn through
    its image pool (`image_pool`)."""
    B, L = p.cfg.train.batch_size, p.cfg.loss
    a, b = k.batches.domains(p.order.next(B)[k.mine], *jitter_of(p, k, B))
    G, D = p.G, p.D
    D.requires_grad_(False)
    with k.autocast():
        fake_b, fake_a = G.ab(a), G.ba(b)
        cycle = (G.ba(fake_b).float() - a).abs().mean() + (G.ab(fake_a).float() - b).abs().mean()
        adv = (generator_loss(k.loss, D.on_b(fake_b).float(), lambda: D.on_b(b).float())
               + generator_loss(k.loss, D.on_a(fake_a).float(), lambda: D.on_a(a).float()))
        loss_g = L.adversarial * adv + L.cycle * cycle
        if L.identity > 0:
            identity = (G.ab(b).float() - b).abs().mean() + (G.ba(a).float() - a).abs().mean()
            loss_g = loss_g + L.cycle * L.identity * identity
    p.opt_g.zero_grad(set_to_none=True)
    loss_g = k.backward_mean("g", k.g_params, loss_g)
    D.requires_grad_(True)
    gn_g = grad_norm(k.g_params)
    if not k.guard.ok(loss_g, gn_g):
        return False, {}
    k.guard.step(p.opt_g)

    shown_b, shown_a = image_pool(p, k, "pool_b", fake_b), image_pool(p, k, "pool_a", fake_a)
    with k.autocast():
        rb, fb = D.on_b(b).float(), D.on_b(shown_b).float()
        ra, fa = D.on_a(a).float(), D.on_a(shown_a).float()
        loss_d_b, loss_d_a = k.loss.d(rb, fb), k.loss.d(ra, fa)
    p.opt_d.zero_grad(set_to_none=True)
    loss_d = k.backward_mean("d", k.d_params, loss_d_a + loss_d_b)
    gn_d = grad_norm(k.d_params)
    if not k.guard.ok(loss_d, gn_d):
        return False, {}
    k.guard.step(p.opt_d)
    p.images += B
    rel = k.loss.relativistic
    acc_a, acc_b = d_accuracy(ra.detach(), fa.detach(), rel), d_accuracy(rb.detach(), fb.detach(), rel)
    return True, k.guard.masked({
        "loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "cycle": cycle.detach(), "loss_d_a": loss_d_a.detach(),
        "loss_d_b": loss_d_b.detach(), "d_acc": (acc_a + acc_b) / 2, "d_acc_a": acc_a, "d_acc_b": acc_b,
        "d_real": (ra.mean() + rb.mean()).detach() / 2, "d_fake": (fa.mean() + fb.mean()).detach() / 2, "grad_norm_g": gn_g, "grad_norm_d": gn_d,
    })


def image_pool(p: RunState, k: Tools, name: str, fake: torch.Tensor) -> torch.Tensor:
    """CycleGAN's history of generated images (Shrivastava et al. 2017), loss.pool of them, for this
    process's rows of the global batch. Until the pool is full each image is stored and shown; then,
    with probability 1/2, a random stored image is shown and replaced by the new one, else the new one
    is shown. The whole global batch passes through it in order, with draws from the run's latent
    stream, so the pool (kept in `p.extra`, and so in checkpoints) is the same on every rank."""
    size = p.cfg.loss.pool
    if size == 0:
        return fake.detach()
    new = k.world.gather_rows(fake.detach().float())
    pool = p.extra.get(name)
    stored = list(pool.to(new.device).unbind()) if pool is not None else []
    shown = []
    for img in new.unbind():
        if len(stored) < size:
            stored.append(img)
            shown.append(img)
        elif float(torch.rand((), generator=p.latent_gen)) < 0.5:
            j = int(torch.randint(size, (), generator=p.latent_gen))
            shown.append(stored[j])
            stored[j] = img
        else:
            shown.append(img)
    p.extra[name] = torch.stack(stored)
    return torch.stack(shown)[k.mine].to(fake.dtype)
