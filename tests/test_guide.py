"""docs/guide.md cannot rot: its commands run (at a tiny size), its Python runs, and every quoted
piece of gankit's source is still verbatim in that file."""
import re
import shlex
import subprocess
import sys
import time

from .conftest import ROOT

TINY = ["train.steps=6", "train.log_every=2", "train.sample_every=3", "train.checkpoint_every=3", "model.width=8", "train.batch_size=16"]


def blocks(path):
    return re.findall(r"```(bash|python)\n(.*?)```", path.read_text(), re.S)


def tiny(cmd):
    """The command at a tiny size: a few steps, narrow networks, few samples."""
    args = shlex.split(cmd)
    assert args[0] == "gankit", cmd
    if args[1] == "train":
        args += TINY
    if "--n" in args:
        args[args.index("--n") + 1] = "50"
    if "--budget-minutes" in args:
        args[args.index("--budget-minutes") + 1] = "0.05"
        args += ["--n", "50", "--set", *TINY, "data.limit=300"]  # a small real set: its feature classifier trains in seconds
    return [sys.executable, "-m", "gankit", *args[1:]]


def test_guide_commands_code_and_quotes(tmp_path, shared_cache, capsys):
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    found = blocks(ROOT / "docs" / "guide.md")
    kinds = [k for k, _ in found]
    assert kinds.count("bash") >= 6 and kinds.count("python") >= 6
    for kind, body in found:
        if kind == "python" and body.startswith("# from "):
            source, quoted = body.split("\n", 1)
            text = (ROOT / source.removeprefix("# from ").strip()).read_text()
            assert quoted in text, f"{source}: the guide quotes code that is no longer there:\n{quoted}"
        elif kind == "python":
            r = subprocess.run([sys.executable, "-c", body], cwd=tmp_path, capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, body + r.stderr[-2000:]
        else:
            for line in body.strip().splitlines():
                t0 = time.perf_counter()
                r = subprocess.run(tiny(line), cwd=tmp_path, capture_output=True, text=True, timeout=600)
                with capsys.disabled():
                    print(f"  {time.perf_counter() - t0:5.1f} s  {line}")
                assert r.returncode == 0, f"{line}\n{r.stdout[-1500:]}\n{r.stderr[-2500:]}"
    assert (tmp_path / "runs" / "guide_photos_run" / "report.html").is_file()
    assert (tmp_path / "runs" / "guide_cmp" / "compare.html").is_file()
