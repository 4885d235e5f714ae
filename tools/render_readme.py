"""Render README.md from nbs/index.ipynb (the notebook is the source): markdown cells as they are, code
cells that are not hidden as Python blocks followed by their printed output."""
import contextlib, io, sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def render(nb_path=ROOT / "nbs/index.ipynb") -> str:
    "The README text for the index notebook (code cells are run to show their output)."
    nb, parts, env = nbformat.read(nb_path, as_version=4), [], {}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            parts.append(cell.source)
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out): exec(cell.source, env)
        if cell.source.lstrip().startswith("#| hide"): continue
        parts.append(f"```python\n{cell.source}\n```" + (f"\n\n```\n{out.getvalue().rstrip()}\n```" if out.getvalue() else ""))
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    target = ROOT / "README.md"
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if target.exists() and target.read_text() == text else "README.md is out of date: run `make readme`")
    target.write_text(text)
    print(f"wrote {target}")
