"""Function keys: a changed body starts a new history; location and pickling do not."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle
import pytest

from metadata.records import function_key

WORKFLOW_SRC = '''
def resize(img, factor=2):
    scale = [factor * i for i in range(3)]
    return {"img": img, "scale": scale, "tag": frozenset({"a", "b", "c"})}
'''


@pytest.fixture()
def load(tmp_path: Path) -> Iterator[Callable[[str, str], ModuleType]]:
    """Import source text as `<dir>/wf.py` under the private name planner.loader gives it."""
    names: list[str] = []

    def _load(directory: str, source: str) -> ModuleType:
        path = tmp_path / directory / "wf.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
        name = f"planflow_user_wf_{digest}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        names.append(name)
        spec.loader.exec_module(module)
        return module

    yield _load
    for name in names:
        sys.modules.pop(name, None)


def test_key_names_module_and_qualname(load: Callable[[str, str], ModuleType]) -> None:
    key = function_key(load("a", WORKFLOW_SRC).resize)
    name, _, digest = key.rpartition(":")
    assert name == "wf.resize"
    assert len(digest) == 12 and int(digest, 16) >= 0


def test_same_body_in_another_directory_keeps_the_key(
        load: Callable[[str, str], ModuleType]) -> None:
    here = load("a", WORKFLOW_SRC).resize
    moved = load("b/deeper", "\n\n# moved down a few lines\n" + WORKFLOW_SRC).resize
    assert here.__code__.co_filename != moved.__code__.co_filename
    assert function_key(here) == function_key(moved)


@pytest.mark.parametrize("change", [
    ("factor * i", "factor + i"),                 # bytecode
    ("range(3)", "range(4)"),                     # a constant inside the nested comprehension
    ('"tag"', '"label"'),                         # a constant
    ('{"a", "b", "c"}', '{"a", "b", "d"}'),       # frozenset constant
])
def test_changed_body_gives_a_new_key(load: Callable[[str, str], ModuleType],
                                      change: tuple[str, str]) -> None:
    old = load("a", WORKFLOW_SRC).resize
    new = load("b", WORKFLOW_SRC.replace(*change)).resize
    assert function_key(old) != function_key(new)


def test_cloudpickled_by_value_keeps_the_key(load: Callable[[str, str], ModuleType]) -> None:
    module = load("a", WORKFLOW_SRC)
    cloudpickle.register_pickle_by_value(module)
    try:
        clone: Any = cloudpickle.loads(cloudpickle.dumps(module.resize))
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    assert clone is not module.resize
    assert function_key(clone) == function_key(module.resize)


def test_key_survives_adaptive_specialisation(load: Callable[[str, str], ModuleType]) -> None:
    fn = load("a", WORKFLOW_SRC).resize
    before = function_key(fn)
    function_key.__globals__["_code_digest"].cache_clear()
    for i in range(2000):
        fn(i)
    assert function_key(fn) == before


def test_wrappers_resolve_to_the_underlying_function() -> None:
    import functools

    class Resizer:
        def __call__(self, img: int) -> int:
            return img

        def method(self, img: int) -> int:
            return img

    def plain(a: int, b: int) -> int:
        return a + b

    assert function_key(functools.partial(plain, 1)) == function_key(plain)
    assert function_key(Resizer()).rpartition(":")[0].endswith("Resizer.__call__")
    assert function_key(Resizer().method) == function_key(Resizer.method)
    assert function_key(len).startswith("builtins.len:")
