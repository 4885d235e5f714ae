"End to end: the phase report (pipeline/phase_report.ipynb) on a tiny archive, prepared cache and 1-epoch model."
import base64
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tiny_project(root: Path, nz: int = 4) -> Path:
    "A project folder: params.yaml (tiny), raw scans of moving storms (`nz` levels; one level: a composite whose west edge\n    the radar does not see), the prepared cache; returns params path."
    from nowcast.data import prepare
    from nowcast.io import Grid, azimuthal_equidistant, write_grid_netcdf
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["prepare"].update(n_in=4, n_out=7, cache_dir="data/cache", pool=2)
    params["model"]["hidden"] = [4, 4]
    params["train"].update(batch_size=4, num_workers=0)
    params["phase1"]["epochs"] = 1
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    n = 32
    c = (np.arange(n) - (n - 1) / 2) * 2.0
    grid = Grid(c, c, np.linspace(0.5, 10.0, nz) if nz > 1 else np.zeros(1), azimuthal_equidistant(39.87, -104.76))
    unseen = np.zeros(grid.shape, bool)
    if nz == 1:
        unseen[..., :4] = True
    z, y, x = np.meshgrid(grid.z_km, grid.y_km, grid.x_km, indexing="ij")
    rng = np.random.default_rng(0)
    for e in range(5):
        t0 = np.datetime64("2024-06-01T12:00:00") + np.timedelta64(e, "D")
        x0, y0, u, v = rng.uniform(-20, 0), rng.uniform(-15, 15), rng.uniform(0.5, 2), rng.uniform(-1, 1)
        for k in range(14):
            dbz = 65 * np.exp(-((x - x0 - u * k) ** 2 + (y - y0 - v * k) ** 2) / 60) * np.clip(1 - z / 12, 0, 1) - 5
            t = t0 + np.timedelta64(300 * k, "s")
            name = str(t).replace("-", "").replace(":", "").replace("T", "_")
            write_grid_netcdf(root / "data/raw" / f"event{e}" / f"{name}.nc", dbz.astype(np.float32), unseen, t, grid)
    p = params["prepare"]
    prepare(root / "data/raw", root / "data/cache", n_in=p["n_in"], n_out=p["n_out"], pool=p["pool"],
            split=p["split"])
    return root / "params.yaml"


def _run(*cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    assert r.returncode == 0, f"{cmd[0]} failed:\n{r.stderr[-3000:]}"


def _png_size(output: dict) -> tuple[int, int]:
    "(width, height) of a notebook output's PNG."
    return struct.unpack(">II", base64.b64decode(output["data"]["image/png"])[16:24])


@pytest.mark.slow
@pytest.mark.parametrize("nz", [4, 1])
def test_phase_report_runs_and_renders_offline(tmp_path, nz):
    from nowcast.train import train_phase
    params_path = _tiny_project(tmp_path, nz)
    train_phase(yaml.safe_load(params_path.read_text()), "phase1", root=tmp_path)
    assert (tmp_path / "checkpoints" / "phase1_best.pt").is_file()

    out = tmp_path / "reports" / "phase1_report.ipynb"
    out.parent.mkdir(exist_ok=True)
    _run(BIN / "papermill", REPO / "pipeline" / "phase_report.ipynb", out, "-k", "python3",
         "-p", "phase", "phase1", "-p", "params_path", "params.yaml", "-p", "n_examples", "2", "--cwd", tmp_path)
    metrics = json.loads((tmp_path / "reports" / "phase1_report_metrics.json").read_text())
    assert metrics["phase"] == "phase1" and metrics["n_windows"] > 0
    assert metrics["leads_min"] == [5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0]
    for method in ("model", "persistence"):
        csi = [v for v in metrics["csi35"][method] if v is not None]
        assert len(metrics["csi35"][method]) == 7 and all(0 <= v <= 1 for v in csi)
    assert metrics["csi35"]["persistence"][0] > 0.3          # the storms move slowly: persistence is good at t+5
    assert metrics["core_survival"]["lead_min"] == 15

    nb = json.loads(out.read_text())
    images = [o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 4                                  # curves, CSI, two example windows
    assert "of the observed cores" in json.dumps(nb) or "No observed core" in json.dumps(nb)
    from nowcast.report import kept_checkpoint   # which weights phase1_best.pt holds, as the run summary says it
    kept = kept_checkpoint(json.loads((tmp_path / "reports" / "phase1_train.json").read_text()))
    assert kept.startswith("phase1 keeps") and kept in json.dumps(nb), kept
    examples = next(c for c in nb["cells"] if "plot_sequence(" in "".join(c["source"]))
    sizes = [_png_size(o) for o in examples["outputs"] if "image/png" in o.get("data", {})]
    assert len(sizes) == 2
    for w, h in sizes:   # 3 leads across; 2 sequences x (map, cross-section) down, or maps alone for one level
        assert (h / w > 0.9) == (nz > 1), (nz, w, h)

    html = tmp_path / "reports" / "phase1_report.html"
    _run(BIN / "jupyter", "nbconvert", "--to", "html", out, "--output", html.name)
    assert html.stat().st_size > 10_000 and "data:image/png;base64" in html.read_text()
