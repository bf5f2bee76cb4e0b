"""Hostile configuration, fuzzed: every bad tree or override is one ConfigError naming a key."""
import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gankit.config import Config, make_config
from gankit.errors import ConfigError


def _sections() -> dict[str, list[str]]:
    cfg = Config()
    return {f.name: [g.name for g in dataclasses.fields(getattr(cfg, f.name))] for f in dataclasses.fields(cfg)}


SECTION_KEYS = _sections()
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["ns", "hinge", "bf16", "mlp", "auto", "rollback", "color", "1e-3", "[0.5, 0.9]", ".nan", ".inf", "-.inf", "1e400"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=5), scalars, max_size=2))
keys = st.sampled_from([f"{s}.{k}" for s, ks in SECTION_KEYS.items() for k in ks] + ["train.stepz", "trian.steps", "model"])


def _assert_clean(tree=None, overrides=()):
    try:
        cfg = make_config(tree, overrides)
    except ConfigError as e:
        msg = str(e)
        assert "\n" not in msg and msg, msg
        head = msg.split(":", 1)[0]
        named = [k for k in (list(tree or {}) + [o.split("=", 1)[0] for o in overrides])]
        assert any(head.startswith(n.split(".")[0]) or n.startswith(head) for n in named) or head.endswith(".yaml"), msg
        return
    # accepted: every float in the result is finite and the config round-trips
    for sec in dataclasses.fields(cfg):
        for f in dataclasses.fields(getattr(cfg, sec.name)):
            v = getattr(getattr(cfg, sec.name), f.name)
            for x in (v if isinstance(v, tuple) else (v,)):
                assert not (isinstance(x, float) and not math.isfinite(x)), (sec.name, f.name, v)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, values, max_size=4))
def test_fuzzed_config_trees_fail_cleanly(flat):
    tree: dict = {}
    for dotted, v in flat.items():
        parts = dotted.split(".")
        if len(parts) == 1:
            tree[parts[0]] = v
        else:
            node = tree.setdefault(parts[0], {})
            if isinstance(node, dict):
                node[parts[1]] = v
    _assert_clean(tree)


@settings(max_examples=300, deadline=None)
@given(keys, st.one_of(st.text(max_size=20), st.sampled_from([".nan", ".inf", "-.inf", "1e400", "[1, .nan]", "{a: 1}", "0", "-1", "1e9", "true", "null", "[]"])))
def test_fuzzed_overrides_fail_cleanly(key, raw):
    _assert_clean(None, [f"{key}={raw}"])


def test_override_with_a_newline_is_one_line():
    for text in ("model=\n", "train.st\neps=3", "train.steps=\n5x"):
        with pytest.raises(ConfigError) as e:
            make_config(None, [text])
        assert "\n" not in str(e.value), str(e.value)
