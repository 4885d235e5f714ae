"""Every notebook in nbs/ runs top to bottom as a test (its examples assert the behaviour they show)."""
import json, os, re, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith(("_", ".")))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(nb):
    "The notebook's cells run without error under nbdev-test (slow cells skipped)."
    exe = Path(sys.executable).with_name("nbdev-test")
    res = subprocess.run([str(exe), str(nb)], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONHASHSEED": "0"}, timeout=900)
    assert res.returncode == 0 and "Success" in res.stdout, f"{nb.name} failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"


# --- the kernel each notebook names: JupyterLab opens it ready to run, without a "Select Kernel" dialog ----------

ALL_NOTEBOOKS = sorted([*NOTEBOOKS, *(ROOT / "pipeline").glob("*.ipynb")])


def _kernel_of(nb: Path) -> str | None:
    return json.loads(nb.read_text())["metadata"].get("kernelspec", {}).get("name")


def _setup_kernel() -> str:
    "The kernel name `make setup` registers (`ipykernel install --name ...` in the Makefile)."
    names = re.findall(r"ipykernel install .*--name (\S+)", (ROOT / "Makefile").read_text())
    assert len(names) == 1, f"the Makefile should register one kernel, found {names}"
    return names[0]


def test_every_notebook_names_the_setup_kernel():
    "Each notebook in nbs/ and pipeline/ names the kernel `make setup` registers, and Jupyter here knows it."
    jupyter = Path(sys.executable).with_name("jupyter")
    res = subprocess.run([str(jupyter), "kernelspec", "list", "--json"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    installed, name = set(json.loads(res.stdout)["kernelspecs"]), _setup_kernel()
    assert name in installed, f"kernel {name!r} is not registered: {sorted(installed)}"
    assert len(ALL_NOTEBOOKS) >= 10, ALL_NOTEBOOKS
    wrong = {nb.relative_to(ROOT).as_posix(): _kernel_of(nb) for nb in ALL_NOTEBOOKS if _kernel_of(nb) != name}
    assert not wrong, f"notebooks that do not name the {name!r} kernel (JupyterLab asks which to use): {wrong}"


def test_nbdev_clean_keeps_the_kernel(tmp_path):
    "`nbdev-clean` (with the project's settings) leaves each notebook's kernelspec as it is."
    for nb in ALL_NOTEBOOKS: shutil.copy2(nb, tmp_path / f"{nb.parent.name}__{nb.name}")
    res = subprocess.run([str(Path(sys.executable).with_name("nbdev-clean")), "--fname", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    for nb in ALL_NOTEBOOKS:
        before = json.loads(nb.read_text())["metadata"].get("kernelspec")
        after = json.loads((tmp_path / f"{nb.parent.name}__{nb.name}").read_text())["metadata"].get("kernelspec")
        assert before and after == before, (nb.name, before, after)
