"""gankit: train, evaluate, compare and diagnose GANs, on a CPU or on GPUs."""
__version__ = "0.1.0"
