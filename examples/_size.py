"""How big the examples run: full size by default; GANKIT_EXAMPLES_TINY=1 (the smoke tests) makes
each a few seconds long, to check that it runs, not what it learns."""
import os

TINY = os.environ.get("GANKIT_EXAMPLES_TINY") == "1"


def steps(full: int) -> int:
    return 4 if TINY else full


def small(full: int, tiny: int) -> int:
    return tiny if TINY else full
