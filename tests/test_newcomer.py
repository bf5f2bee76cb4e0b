"""A newcomer's path: in a fresh clone, the README's "Your own images" commands run as written on a
folder of a few dozen small PNGs of varied sizes and modes (at a tiny size: a few steps, few samples)."""
import re
import shlex
import subprocess
import sys

import numpy as np
from PIL import Image

from .conftest import ORT_WEB, ROOT, need

TINY = ["train.steps=6", "train.log_every=2", "train.sample_every=3", "train.checkpoint_every=3", "model.width=8", "train.batch_size=8"]


def quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Your own images"):]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1).strip().splitlines()


def test_readme_quick_start_runs_in_a_fresh_clone(tmp_path, monkeypatch):
    need(f"onnxruntime-web at {ORT_WEB}", ORT_WEB.is_dir())
    monkeypatch.setenv("GANKIT_ORT_WEB", str(ORT_WEB))
    clone = tmp_path / "gankit"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    (clone / ".venv").symlink_to(ROOT / ".venv")  # the installed packages; the commands, configs and README are the clone's
    rng = np.random.default_rng(0)
    pics = tmp_path / "my pictures"
    for i in range(36):
        h, w = (int(v) for v in rng.integers(20, 260, size=2))
        im = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).convert(["RGB", "L", "RGBA", "P", "LA"][i % 5])
        (pics / ("cats" if i % 2 else "dogs")).mkdir(parents=True, exist_ok=True)
        im.save(pics / ("cats" if i % 2 else "dogs") / f"{i:02d}.png")
    commands = quick_start()
    assert [c.split()[1] for c in commands] == ["train", "sample", "eval", "export", "serve"]
    for line in commands:
        args = shlex.split(line.replace("path/to/your/images", shlex.quote(str(pics))))
        assert args[0] == ".venv/bin/gankit"
        args = [sys.executable, "-m", "gankit", *args[1:]]  # the same entry point as .venv/bin/gankit
        if args[3] == "train":
            args += TINY
        if "--n" in args:
            args[args.index("--n") + 1] = "40"
        if args[3] == "serve":
            args += ["--port", "0"]
            proc = subprocess.Popen(args, cwd=clone, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                first = proc.stdout.readline()
                assert "serving the live report of runs/mine at http://127.0.0.1:" in first, first + proc.stderr.read()
                proc.stdout.readline()  # the sampler page is exported in the background: wait for its line
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            continue
        r = subprocess.run(args, cwd=clone, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{line}\n{r.stdout[-1500:]}\n{r.stderr[-2500:]}"
    assert (clone / "runs" / "mine" / "grid.png").is_file() and (clone / "runs" / "mine" / "report.html").is_file()
    assert (clone / "runs" / "mine-export" / "generator.onnx").is_file() and (clone / "runs" / "mine" / "eval.json").is_file()
    assert (clone / "runs" / "mine" / "sampler" / "index.html").is_file()  # serve exported the sampler page on the fly
    # the README's first lines of Python, in the same clone (500 steps made 6)
    text = (clone / "README.md").read_text()
    code = re.search(r"```python\n(import gankit\n.*?)```", text[text.index("## Your own images"):], re.S).group(1)
    assert 'train={"steps": 500}' in code
    r = subprocess.run([sys.executable, "-c", code.replace('train={"steps": 500}', 'train={"steps": 6}')], cwd=clone,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().startswith("verdict:"), r.stdout + r.stderr[-2000:]
    assert (clone / "runs" / "digits" / "grid.png").is_file()
