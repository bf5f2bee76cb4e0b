"""Every check that needs no training, run before any data is decoded (and by `--dry-run`)."""
from __future__ import annotations

from ..config import Config
from ..data import DataProbe, probe_dataset
from ..device import pick_device
from ..errors import GankitError
from ..losses import LOSSES
from ..models import make_spec


def preflight(cfg: Config, probe: DataProbe) -> None:
    """Loss, architecture against the data (kind, resolution, labels), device, TensorBoard when asked, batch size."""
    LOSSES.get(cfg.loss.name)
    make_spec(cfg.model, probe.shape, probe.num_classes, probe.kind, cfg.loss.gp, probe.label_note, probe.in_channels)
    pick_device(cfg.train.device)
    if cfg.log.tensorboard:
        from ..analysis.tboard import check_available

        check_available()
    if cfg.model.family == "cyclegan" and cfg.loss.identity > 0 and probe.in_channels != probe.shape[0]:
        raise GankitError(f"loss.identity: the identity terms feed each domain's images to the other generator, but A has "
                          f"{probe.in_channels} channel(s) and B {probe.shape[0]}: set loss.identity=0")
    check_batch(cfg.train.batch_size, probe.size, probe.kind)
    if cfg.data.mirror and probe.kind != "image":
        raise GankitError(f"data.mirror: x-flips apply to images; {cfg.data.source} holds {probe.kind}")
    if cfg.eval.every:
        check_eval_metrics(cfg.eval.metrics, probe.kind)
    if cfg.eval.every and cfg.eval.real:  # described now, decoded when training starts
        from ..analysis.evaluate import probe_real

        probe_real(cfg.data, cfg.eval.real, "eval.real")


def check_eval_metrics(metrics: tuple[str, ...], kind: str) -> None:
    """eval.metrics names metrics that apply to the run's kind of data."""
    from ..analysis.evaluate import ALL
    from ..metrics.paired import PAIRED

    known, what = (PAIRED, "a translation run") if kind == "pairs" else (ALL, "a generation run")
    if bad := [m for m in metrics if m not in known]:
        raise GankitError(f"eval.metrics: {bad} not for {what}; choose from {', '.join(known)}")


def check_batch(batch_size: int, size: int, kind: str) -> None:
    """The batch fits in the data (checked on the data's description, and again on what was decoded:
    unreadable files skipped can leave fewer)."""
    if kind != "points" and size < batch_size:
        raise GankitError(f"train.batch_size: {batch_size} is larger than the dataset ({size} examples)")


def check_config(cfg: Config) -> DataProbe:
    """`gankit train --dry-run`: all of the above on the data's description alone."""
    probe = probe_dataset(cfg.data)
    preflight(cfg, probe)
    return probe
