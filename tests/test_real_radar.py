"""The README's real-radar switch, `cp params-real.yaml params.yaml && dvc exp run`, through the pipeline's own stages
(archive: the import of real composites, prepare, train_phase1) on one radar of `../shared/real-radar` and one short
epoch; then the check on a radar the model has never seen, exactly as the README writes it: `nowcast evaluate --params
P ... --split test --max-windows 0 --reports-dir D` on a folder of 500 x 500 crops at 1 km, prepared on the way."""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from _pipeline import ROOT, copy_project, run

SHARED = (ROOT / ".." / "shared" / "real-radar").resolve()
# what the smoke run changes: where the shared data lies from the copy, and -S overrides that only shrink the run
SMOKE = {"radar_import.source_dir": str(SHARED), "radar_import.sources": "[knmi]", "train.max_batches_per_epoch": 2,
         "train.max_val_windows": 2, "phase1.epochs": 1}


def _crops(src: Path, dst: Path, n: int = 12):
    "A radar the model has never seen, as the check gets it: 500 x 500 crops at 1 km, one level, in the reader's contract."
    from nowcast.io import Grid, read_scan, write_grid_netcdf
    for p in sorted(src.rglob("*.nc"))[:n]:
        s = read_scan(p)
        g = Grid(s.grid.x_km[100:600], s.grid.y_km[150:650], s.grid.z_km, s.grid.projection)
        write_grid_netcdf(dst / p.parent.name / p.name, s.dbz[:, 150:650, 100:600], s.missing[:, 150:650, 100:600],
                          s.time, g, time_bounds=s.time_bounds)


def test_real_radar_switch_imports_trains_and_scores_an_unseen_radar(tmp_path):
    proj = copy_project(tmp_path / "proj")
    sets = " ".join(f"-S '{k}={v}'" for k, v in SMOKE.items())
    out = run(f"cp params-real.yaml params.yaml && dvc exp run {sets} train_phase1", proj, timeout=1500)
    prep = json.loads((proj / "reports/prepare.json").read_text())
    assert [(r["name"], r["scans_kept"]) for r in prep["radars"]] == [("knmi", 92)], out[-3000:]
    assert prep["radars"][0]["institution"].startswith("KNMI") and prep["windows"]["train"] > 0
    from nowcast.inference import load_checkpoint
    ck = load_checkpoint(proj / "checkpoints/phase1_best.pt")
    kw = ck["model_config"]["kwargs"]
    assert (kw["motion_prior"], kw["lk_levels"], kw["lk_sigma"], kw["lk_floor_dbz"], kw["advect_space"]) == (
        "lk", [16, 8, 4, 2, 1], 4.0, 10.0, "linear_z")   # params-real's prior, moving reflectivity
    assert kw["dbz_range"] == [-10.0, 70.0]   # the cache's normalisation, which the floor is measured on
    # the README's check on a radar it has never seen, as written there
    _crops(proj / "nowcast-data/real-radar/knmi", proj / "unseen" / "radar_x")
    p = yaml.safe_load((proj / "params.yaml").read_text())
    p["data"]["raw_dir"] = "unseen"
    p["prepare"].update(split={"test": 1.0}, min_train_windows=0)
    (proj / "P.yaml").write_text(yaml.safe_dump(p))
    pipeline_cache = (proj / "cache/index.json").read_bytes()
    out = run("nowcast evaluate --params P.yaml --model-path checkpoints/phase1_best.pt --split test --max-windows 0 "
              "--reports-dir D", proj, timeout=900)
    metrics = json.loads((proj / "D/metrics.json").read_text())
    assert set(metrics) == {"model", "persistence", "optical_flow", "sprog", "titan_style"}, out[-2000:]
    seen = json.loads((proj / "D/prepare.json").read_text())
    assert seen["raw_dir"] == "unseen" and seen["windows"]["test"] == 12 - 11 + 1
    assert seen["cache_dir"] == "D/cache" and (proj / "cache/index.json").read_bytes() == pipeline_cache   # the pipeline's cache kept
    assert np.isfinite(metrics["model"]["csi35_t+5"] if metrics["model"]["csi35_t+5"] is not None else 0.0)
