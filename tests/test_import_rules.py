"""The house rules on imports, read from the source tree (AST only: nothing here imports the pack).

- ComfyUI's modules (``comfy``, ``comfy_*``, ``server``, ``folder_paths``) are reached only by ``nodes/bridge.py``,
  whether by an import statement, ``importlib.import_module("...")`` or ``sys.modules["..."]``;
- torch only by ``nodes/tensors.py`` (the tensor module); ``scenario_api`` therefore never by either;
- inside the pack, imports are relative, and ``scenario_api`` never imports the ComfyUI adapter (``nodes/``);
- ``nodes/`` uses only public ``scenario_api`` names: no ``_private`` module, name or attribute, and from a
  module that declares ``__all__`` only the names it lists or the package's ``__all__`` exports;
- no import cycle among the ``scenario_api`` modules, nor among the ``nodes`` modules. Imports inside functions
  count (a lazy import only hides a cycle); imports under ``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scenario_api", "nodes")
BRIDGE = "nodes.bridge"
TENSORS = "nodes.tensors"
COMFY_TOP_LEVEL = {"comfy", "server", "folder_paths"}  # and every "comfy_*" package (comfy_execution, comfy_api...)
TORCH_TOP_LEVEL = {"torch", "torchvision", "torchaudio"}


@dataclass(frozen=True)
class Use:
    """One module reached from the pack: ``target`` is absolute (``scenario_api.spec``, ``torch.nn``)."""

    module: str
    target: str
    line: int
    how: str  # "import", "dynamic" (importlib / __import__) or "sys.modules"
    names: tuple[str, ...] = ()  # for "from target import a, b": the names taken from target
    relative: bool = False
    type_only: bool = False


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    is_package: bool
    uses: list[Use] = field(default_factory=list)

    @property
    def where(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


def _top(target: str) -> str:
    return target.split(".", 1)[0]


def _is_comfy(target: str) -> bool:
    top = _top(target)
    return top in COMFY_TOP_LEVEL or top.startswith("comfy_")


def _is_torch(target: str) -> bool:
    return _top(target) in TORCH_TOP_LEVEL


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _load_modules() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            name, is_package = _module_name(path)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            modules[name] = Module(name, path, tree, is_package)
    for module in modules.values():
        module.uses = list(_uses(module, modules))
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, type_only: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node under ``node``, with whether it sits in an ``if TYPE_CHECKING:`` body."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            yield child, type_only
            for item in child.body:
                yield item, True
                yield from _walk(item, True)
            for item in child.orelse:
                yield item, type_only
                yield from _walk(item, type_only)
            continue
        yield child, type_only
        yield from _walk(child, type_only)


def _absolute(module: Module, level: int, target: str | None) -> str:
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    base = package[: len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, *([target] if target else [])])


def _constant_text(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _uses(module: Module, modules: dict[str, Module]) -> Iterator[Use]:
    for node, type_only in _walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Use(module.name, alias.name, node.lineno, "import", type_only=type_only)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node.level, node.module) if node.level else (node.module or "")
            plain: list[str] = []
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:  # "from . import spec": the submodule itself
                    yield Use(module.name, submodule, node.lineno, "import", (), node.level > 0, type_only)
                else:
                    plain.append(alias.name)
            if plain or not node.names:
                yield Use(module.name, base, node.lineno, "import", tuple(plain), node.level > 0, type_only)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            text = _constant_text(node.args[0])
            if called in ("import_module", "__import__") and text:
                yield Use(module.name, text, node.lineno, "dynamic", type_only=type_only)
            elif called == "get" and text and _is_sys_modules(func):
                yield Use(module.name, text, node.lineno, "sys.modules", type_only=type_only)
            elif text and re.fullmatch(r"[A-Za-z_]\w*(\.\w+)*", text) and (_is_comfy(text) or _is_torch(text)):
                # a module name handed to a helper, as in nodes/bridge.py's _module("comfy.utils")
                yield Use(module.name, text, node.lineno, f"{called or 'call'}()", type_only=type_only)
        elif isinstance(node, ast.Subscript) and _is_sys_modules_value(node.value):
            text = _constant_text(node.slice)
            if text:
                yield Use(module.name, text, node.lineno, "sys.modules", type_only=type_only)


def _is_sys_modules_value(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "modules" and getattr(node.value, "id", None) == "sys"


def _is_sys_modules(func: ast.expr) -> bool:
    return isinstance(func, ast.Attribute) and _is_sys_modules_value(func.value)


MODULES = _load_modules()


def _report(problems: Iterable[str]) -> str:
    return "\n" + "\n".join(sorted(set(problems)))


# --------------------------------------------------------------------------- where ComfyUI and torch are reached


def test_the_source_tree_is_read() -> None:
    assert {BRIDGE, TENSORS, "scenario_api", "scenario_api.spec", "scenario_api.errors", "nodes"} <= set(MODULES)
    assert len(MODULES) > 30


def test_comfyui_modules_are_reached_only_from_the_bridge() -> None:
    problems = [
        f"{m.where}:{u.line}: {u.how} {u.target}"
        for m in MODULES.values()
        for u in m.uses
        if _is_comfy(u.target) and m.name != BRIDGE
    ]
    assert not problems, "only nodes/bridge.py may reach ComfyUI's modules:" + _report(problems)
    reached = {u.target for u in MODULES[BRIDGE].uses if _is_comfy(u.target)}
    assert {"comfy.model_management", "server"} <= reached, reached  # the rule above is not vacuous


def test_torch_is_imported_only_by_the_tensor_module() -> None:
    problems = [
        f"{m.where}:{u.line}: {u.how} {u.target}"
        for m in MODULES.values()
        for u in m.uses
        if _is_torch(u.target) and m.name != TENSORS
    ]
    assert not problems, "only nodes/tensors.py may import torch:" + _report(problems)
    assert any(_top(u.target) == "torch" for u in MODULES[TENSORS].uses)


def test_imports_inside_the_pack_are_relative_and_the_library_never_reaches_the_adapter() -> None:
    problems = []
    for m in MODULES.values():
        for u in m.uses:
            if _top(u.target) in PACKAGES and not u.relative:
                problems.append(f"{m.where}:{u.line}: absolute {u.how} of {u.target} (use a relative import)")
            if m.name.startswith("scenario_api") and u.relative and not u.target.startswith("scenario_api"):
                problems.append(f"{m.where}:{u.line}: scenario_api reaches {u.target or 'the pack root'}")
    assert not problems, _report(problems)


# --------------------------------------------------------------------------- nodes/ uses public scenario_api names


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _declared_all(module: Module) -> set[str] | None:
    for node in module.tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value is not None:
                return set(ast.literal_eval(node.value))
    return None


def _private_names_defined(prefix: str) -> set[str]:
    """Every ``_name`` a module under ``prefix`` defines: module and class level, and ``self._name`` attributes."""
    found: set[str] = set()
    for m in MODULES.values():
        if not m.name.startswith(prefix):
            continue
        for node in ast.walk(m.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                found.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                found.add(node.attr)
    return {n for n in found if _is_private(n)}


def _library_bindings(module: Module) -> dict[str, str]:
    """Local names a nodes module binds to scenario_api modules or objects: ``{local: "scenario_api.spec"}``."""
    bound: dict[str, str] = {}
    for node, _ in _walk(module.tree):
        if isinstance(node, ast.ImportFrom):
            base = _absolute(module, node.level, node.module) if node.level else (node.module or "")
            if not base.startswith("scenario_api"):
                continue
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{base}.{alias.name}"
    return bound


def test_nodes_use_only_public_scenario_api_names() -> None:
    library_private = _private_names_defined("scenario_api") - _private_names_defined("nodes")
    package_exports = _declared_all(MODULES["scenario_api"]) or set()
    assert {"ScenarioClient", "spec", "ValidationError"} <= package_exports
    problems = []
    for m in MODULES.values():
        if not m.name.startswith("nodes"):
            continue
        for u in m.uses:
            if not u.target.startswith("scenario_api"):
                continue
            if any(_is_private(part) for part in u.target.split(".")):
                problems.append(f"{m.where}:{u.line}: imports the private module {u.target}")
            source = MODULES.get(u.target)
            public = _declared_all(source) if source is not None else None
            if public is not None:  # the package root's __all__ is the library's public surface too
                public |= package_exports
            for name in u.names:
                if _is_private(name):
                    problems.append(f"{m.where}:{u.line}: imports {u.target}.{name}")
                elif public is not None and name not in public and name != "*":
                    problems.append(f"{m.where}:{u.line}: imports {u.target}.{name}, not in its __all__")
        bound = _library_bindings(m)
        for node in ast.walk(m.tree):
            if not isinstance(node, ast.Attribute) or not _is_private(node.attr):
                continue
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if owner in bound:
                problems.append(f"{m.where}:{node.lineno}: reads {bound[owner]}.{node.attr}")
            elif owner not in ("self", "cls") and node.attr in library_private:
                problems.append(f"{m.where}:{node.lineno}: reads .{node.attr}, a private scenario_api attribute")
    assert not problems, "nodes/ may use only public scenario_api names:" + _report(problems)


# --------------------------------------------------------------------------- no import cycles


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a module importing itself), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graphs here are a few dozen modules deep at most
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"d"}}
    assert import_cycles(graph) == [["a", "b", "c"], ["e"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package: str) -> None:
    graph: dict[str, set[str]] = {name: set() for name in MODULES if name.split(".")[0] == package}
    lines: dict[tuple[str, str], str] = {}
    for name in graph:
        module = MODULES[name]
        for u in module.uses:
            if u.type_only or u.target == name or u.target not in graph:
                continue
            graph[name].add(u.target)
            lines.setdefault((name, u.target), f"{module.where}:{u.line}")
    assert sum(len(targets) for targets in graph.values()) > 5  # the graph is really built
    cycles = import_cycles(graph)
    details = [
        " -> ".join(cycle) + "  (" + ", ".join(lines[(a, b)] for a in cycle for b in cycle if (a, b) in lines) + ")"
        for cycle in cycles
    ]
    assert not cycles, f"import cycles in {package}:" + _report(details)
