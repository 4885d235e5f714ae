"""Every notebook in nbs/ runs top to bottom as a test (its examples assert the behaviour they show)."""
import os, subprocess, sys
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
