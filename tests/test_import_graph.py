"""The package's import graph, read from the source (every `from .x import` and `from gankit.x
import`, also those inside functions): no circle, nothing imports the package face `gankit` (its
__init__) from inside the package, and no arrow points up the layers (README, "Code layout")."""
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    out = {}
    for f in (SRC / "gankit").rglob("*.py"):
        parts = f.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        package = m.split(".") if f.name == "__init__.py" else m.split(".")[:-1]
        for node in ast.walk(ast.parse(f.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "gankit":
                base = node.module
            else:
                continue
            for alias in node.names:
                target = f"{base}.{alias.name}" if f"{base}.{alias.name}" in mods else base
                if target in mods and target != m:
                    edges[m].add(target)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


# lowest first; a module may import its own layer and those below it
LAYERS = (
    ("core", ("version", "errors", "registry", "config", "console", "device", "jsonl", "paths", "runfolder", "viz",
              "checkpoint", "runlock")),
    ("domain", ("data", "models", "losses", "metrics")),
    ("latent", ("latent",)),
    ("artefact", ("artefact",)),
    ("analysis", ("analysis",)),
    ("training", ("training",)),
    ("api", ("api", "web")),
    ("commands", ("commands", "cli", "__main__")),
)


def layer_of(module: str) -> int:
    if module == "gankit":
        return len(LAYERS)  # the package face sits on top
    first = module.split(".")[1]
    found = [i for i, (_, names) in enumerate(LAYERS) if first in names]
    assert found, f"{module} belongs to no layer: add it to LAYERS (and the README's table)"
    return found[0]


def upward(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} -> {t}" for m, targets in edges.items() for t in targets if layer_of(t) > layer_of(m))


def test_the_checker_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_and_nothing_imports_the_package_face():
    mods = _modules()
    edges = _edges(mods)
    assert len(mods) > 40 and edges["gankit.training.loop"]  # the walk sees the package
    assert _cycles(edges) == []
    face = sorted(m for m, targets in edges.items() if "gankit" in targets)
    assert face == [], face


def test_no_arrow_points_up_the_layers():
    edges = _edges(_modules())
    assert upward({"gankit.training.loop": {"gankit.api.run"}, "gankit.api.run": {"gankit.training.loop"}}) == [
        "gankit.training.loop -> gankit.api.run"]  # the checker sees an upward arrow
    assert upward(edges) == []
    assert edges["gankit.training.loop"] & {"gankit.training.steps", "gankit.config"}  # it walks the real graph


def test_every_import_of_the_package_names_one_of_its_modules():
    """Imports inside functions run only when called: a moved module must not leave one behind."""
    mods = _modules()
    missing = []
    for m, f in mods.items():
        package = m.split(".") if f.name == "__init__.py" else m.split(".")[:-1]
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("gankit")):
                base = (".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
                        if node.level else node.module)
                if base not in mods:
                    missing.append(f"{f.relative_to(SRC)}:{node.lineno}: {base}")
    assert missing == []
