"""The one error type for user mistakes: the CLI prints it as a single line and exits 2."""


class GankitError(Exception):
    """A mistake in the user's input (config, data, checkpoint, command line)."""


class ConfigError(GankitError):
    """A bad configuration key or value; the message names the key."""


class DataError(GankitError):
    """Data that cannot be read; the message names the file."""


class CheckpointError(GankitError):
    """A checkpoint that cannot be read; the message names the file."""
