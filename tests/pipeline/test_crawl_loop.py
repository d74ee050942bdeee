"""The crawl loop's shape: every part's state is declared in its `__init__` (nothing is
born half-way through a run), and the loop holds the parts, not their state."""

from __future__ import annotations

import ast

from tests.conftest import REPO_ROOT

CRAWL_PACKAGE = REPO_ROOT / "pipeline" / "crawl"


def _attributes_set(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    targets: list[ast.expr] = []
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            targets += node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets.append(node.target)
    flat = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
    return {
        e.attr
        for e in flat
        if isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name) and e.value.id == "self"
    }


def _born_outside_init() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(CRAWL_PACKAGE.glob("*.py")):
        for cls in ast.parse(path.read_text()).body:
            if not isinstance(cls, ast.ClassDef):
                continue
            methods = [n for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
            fields = {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign)}
            born = fields.union(*(_attributes_set(m) for m in methods if m.name == "__init__"))
            later = set().union(*(_attributes_set(m) for m in methods if m.name != "__init__"))
            if later - born:
                found[f"{path.name}:{cls.name}"] = later - born
    return found


def test_no_attribute_is_born_outside_init() -> None:
    assert len(list(CRAWL_PACKAGE.glob("*.py"))) >= 8
    assert _born_outside_init() == {}


def test_the_check_sees_an_attribute_born_in_a_method() -> None:
    source = "class C:\n    def __init__(self):\n        self.a = 1\n    def run(self):\n"
    source += "        self.a, self.b = 2, 3\n"
    [cls] = ast.parse(source).body
    init, run = cls.body
    assert _attributes_set(init) == {"a"} and _attributes_set(run) == {"a", "b"}
