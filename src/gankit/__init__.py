"""gankit: train, evaluate, compare and diagnose GANs, on a CPU or on GPUs."""
__version__ = "0.1.0"


def load(path, device: str = "cpu"):  # -> gankit.generator.Generator (imported on first call: `import gankit` stays light)
    """A trained generator from an export folder, a run folder or a checkpoint file.

    >>> g = gankit.load("runs/demo")            # or an export folder, or a checkpoint
    >>> images = g.sample(16, seed=0, label=3)  # uint8 [16, H, W, C]
    """
    from .generator import load as _load

    return _load(path, device)
