"""What a reader of `nowcast/` measures, kept true: each stage in dvc.yaml depends on exactly the modules it imports,
and no module or function grows past what a reader follows in one sitting (issue 35's split)."""
import ast, json, re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "nowcast"
MAX_MODULE_LINES = 620   # "about 600": where a reader of a module starts to lose the thread
MAX_FUNCTION_LINES = 65  # about what a notebook can show in one cell and explain in a sentence


def _modules() -> dict:
    return {p.stem: p for p in PKG.glob("*.py") if not p.name.startswith("_")}


def imports_of(tree: ast.AST) -> set:
    "The `nowcast` modules a piece of code imports, at any level (inside functions too)."
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            if n.level == 1: out |= {n.module.split(".")[0]} if n.module else {a.name for a in n.names}
            elif n.module and n.module.startswith("nowcast."): out.add(n.module.split(".")[1])
            elif n.module == "nowcast": out |= {a.name for a in n.names}
        elif isinstance(n, ast.Import):
            out |= {a.name.split(".")[1] for a in n.names if a.name.startswith("nowcast.")}
    return out & set(_modules())


def closure(modules) -> set:
    "Every module the given ones import, directly or not (themselves included)."
    todo, seen = list(modules), set()
    while todo:
        m = todo.pop()
        if m in seen: continue
        seen.add(m)
        todo += imports_of(ast.parse(_modules()[m].read_text()))
    return seen


def _notebook_imports(path: Path) -> set:
    nb = json.loads(path.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    code = "\n".join(l for l in code.splitlines() if not l.lstrip().startswith(("%", "!")))
    return imports_of(ast.parse(code))


def _entry_modules(cmd: str) -> set:
    "The modules a stage's command starts in: the `nowcast` subcommand's module, or the papermill notebook's imports."
    from nowcast.cli import COMMANDS
    out = set()
    for sub in re.findall(r"(?:^|&&\s*)nowcast (\w+)", cmd): out.add(COMMANDS[sub][0].split(".")[1])
    for nb in re.findall(r"papermill (\S+\.ipynb)", cmd): out |= _notebook_imports(ROOT / nb)
    return out


STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_depends_on_the_modules_it_imports(stage):
    "A stage's `nowcast/*.py` deps are exactly the modules its command imports (so a change re-runs what it touches)."
    s = STAGES[stage]
    cmd = s["cmd"] if isinstance(s["cmd"], str) else " && ".join(s["cmd"])
    want = {f"nowcast/{m}.py" for m in closure(_entry_modules(cmd))}
    have = {d for d in s.get("deps", []) if str(d).startswith("nowcast/")}
    assert have == want, f"{stage}: missing {sorted(want - have)}, not imported {sorted(have - want)}"


def test_imports_of_sees_every_form():
    "The import finder itself: relative, absolute, package-level and inside functions."
    code = "from .scan import Scan\nfrom nowcast.write import atomic_write\nfrom nowcast import codes\n" \
           "def f():\n    import nowcast.events\n    from . import readers\n"
    assert imports_of(ast.parse(code)) == {"scan", "write", "codes", "events", "readers"}


def test_no_module_or_function_too_long():
    "No module over about 600 lines and no function over about 60: each reads as one chapter, each function in one breath."
    long_modules = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    long_functions = {}
    for m, p in _modules().items():
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES:
                long_functions[f"{m}.{n.name}"] = n.end_lineno - n.lineno + 1
    assert not long_modules and not long_functions, (long_modules, long_functions)
