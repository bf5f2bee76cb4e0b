"""Training speed on this machine: the plain PyTorch DCGAN step (pytorch/examples form)
against gankit's step at fp32 and bf16 and gankit's full loop, with model FLOPs and the
fraction of the matmul peak measured in the same run. Same as `gankit bench`.

    .venv/bin/python benchmarks/bench_step.py [--device cpu|cuda] [--out benchmarks/bench_cpu.md]

Run nothing else meanwhile: the figures are medians of 3, but two jobs on two cores
slow each other several-fold.
"""
from gankit.cli import main

if __name__ == "__main__":
    import sys

    raise SystemExit(main(["bench", *sys.argv[1:]]))
