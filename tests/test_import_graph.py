"""No import circle among the package's modules: the path of the data reads one way (docs/architecture.md: "nothing
reaches back"). Every `nowcast/**/*.py` is parsed, not imported, so an import inside a function counts as much as one
at the top: absolute (`nowcast.x`, `from nowcast import x`) and relative imports at any level."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "nowcast"


def module_name(path: Path, pkg: Path = PKG) -> str:
    "`nowcast.x` of `nowcast/x.py` (`nowcast.sub` of `nowcast/sub/__init__.py`)."
    parts = [pkg.name, *path.relative_to(pkg).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(tree: ast.AST, name: str, is_package: bool) -> set:
    "Every dotted name an `import` or `from ... import` anywhere in the module may load (relative ones resolved)."
    here = name.split(".") if is_package else name.split(".")[:-1]  # the package a relative import starts from
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module.split(".") if node.module and not node.level else []
            if node.level:
                base = here[:len(here) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            out.add(".".join(base))
            out |= {".".join(base + [a.name]) for a in node.names}  # `from pkg import module`
    return out


def import_graph(pkg: Path = PKG) -> dict:
    "{module: the package's modules it imports}, for every module of the package."
    paths = {module_name(p, pkg): p for p in sorted(pkg.rglob("*.py"))}
    graph = {}
    for name, path in paths.items():
        names = imported_names(ast.parse(path.read_text()), name, path.name == "__init__.py")
        graph[name] = sorted(modules_loaded(names, paths) - {name, pkg.name})
    return graph


def modules_loaded(names, modules) -> set:
    "The modules of ours that dotted names load: each name's longest prefix among `modules` (`nowcast.io.Grid` -> `nowcast.io`)."
    targets = {next((".".join(n.split(".")[:k]) for k in range(n.count(".") + 1, 0, -1)
                     if ".".join(n.split(".")[:k]) in modules), None) for n in names}
    return targets - {None}


def cycles(graph: dict) -> list:
    "One circle per strongly connected group of modules (each as the path around it), none when the graph is a DAG."
    found, state = [], {}
    def visit(m, stack):
        state[m] = "open"; stack.append(m)
        for n in graph.get(m, []):
            if state.get(n) == "open":
                found.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n, stack)
        stack.pop(); state[m] = "done"
    for m in graph:
        if m not in state: visit(m, [])
    return found


def test_no_import_circle_among_nowcast_modules():
    graph = import_graph()
    assert {"nowcast.archive", "nowcast.synthetic", "nowcast.io"} <= set(graph)
    assert "nowcast.synthetic" in graph["nowcast.archive"]  # the archive stage runs the generator
    found = cycles(graph)
    assert not found, "import circles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_graph_sees_every_kind_of_import(tmp_path):
    "Absolute, `from nowcast import`, relative at one and two levels, and inside functions: each is an edge."
    pkg = tmp_path / "nowcast"
    (pkg / "sub").mkdir(parents=True)
    for name, text in {"__init__.py": "", "a.py": "def f():\n    from .b import g\n", "b.py": "import nowcast.c as c\n",
                       "c.py": "from nowcast import d\n", "d.py": "from .sub import e\n", "sub/__init__.py": "",
                       "sub/e.py": "def h():\n    from .. import a\n", "x.py": "from nowcast.io import Grid\nimport numpy\n"}.items():
        (pkg / name).write_text(text)
    graph = import_graph(pkg)
    assert graph["nowcast.a"] == ["nowcast.b"] and graph["nowcast.b"] == ["nowcast.c"] and graph["nowcast.c"] == ["nowcast.d"]
    assert graph["nowcast.d"] == ["nowcast.sub", "nowcast.sub.e"] and graph["nowcast.sub.e"] == ["nowcast.a"]
    assert graph["nowcast.x"] == []  # a module outside the package (`nowcast.io` is not in this one), numpy: no edge
    (circle,) = cycles(graph)
    assert circle == ["nowcast.a", "nowcast.b", "nowcast.c", "nowcast.d", "nowcast.sub.e", "nowcast.a"]
