"""README.md is rendered from nbs/index.ipynb and must not drift from it."""
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_matches_index_notebook():
    "`make readme` would not change README.md."
    res = subprocess.run([sys.executable, "tools/render_readme.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_readme_names_the_two_commands():
    "A newcomer finds the set-up + main job and the set-up + tests commands."
    text = (ROOT / "README.md").read_text()
    assert "make repro" in text and "make test" in text
