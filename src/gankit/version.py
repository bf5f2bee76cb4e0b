"""gankit's version, in a module of its own: what records it (checkpoints, exports, evaluations) imports
it from here, never from the package face."""
__version__ = "0.1.0"
