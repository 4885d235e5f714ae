"""End to end: the evaluation report (pipeline/evaluate_report.ipynb) through papermill and nbconvert, offline, on the tiny
cache, with a probability head beside the checkpoint: the probabilities' sections (BSS by lead, reliability, maps)."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NOTEBOOK = REPO / "pipeline" / "evaluate_report.ipynb"


def _run(*cmd, cwd=None):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd)
    assert r.returncode == 0, f"{cmd[0]} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"


def _checkpoint(cache_dir, path: Path):
    "A checkpoint as the training stages leave it."
    from nowcast.models import get_model
    from nowcast.data import load_cache
    cache = load_cache(cache_dir)
    torch.manual_seed(0)
    kwargs = dict(n_levels=int(cache.shape[1]), n_in=cache.n_in, n_out=cache.n_out, hidden=[4, 4], groups=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": get_model("ConvLSTM3D_Enhanced", **kwargs).state_dict(),
                "model_config": {"name": "ConvLSTM3D_Enhanced", "kwargs": kwargs}, "params": {}, "phase": "phase3",
                "epoch": 1, "step": 1, "best_val": 0.0}, path)
    return path


def _probability_head(cache_dir, path: Path):
    "A probability head as `nowcast probability` saves it: the start's radii, weights moved off the start (no fit: seconds)."
    from nowcast.data import load_cache
    from nowcast.probability import ProbabilityHead, start_weights
    radii, start = (0, 1, 2, 4), np.ones((3, load_cache(cache_dir).n_out), np.int64)
    weights = start_weights(start, radii)
    weights[..., -1] = -0.5   # the bias: the trained probability differs from its start
    return ProbabilityHead([20.0, 35.0, 40.0], start, weights, radii, {"optical_flow_radius": start.tolist()}).save(path)


def test_report_notebook_has_one_parameters_cell():
    nb = json.loads(NOTEBOOK.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "papermill needs exactly one cell tagged 'parameters' (nbdev-clean must keep tags)"
    src = "".join(tagged[0]["source"])
    for name in ("params_path", "model_path", "probability_path", "n_examples"):
        assert f"{name} =" in src
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_report_runs_and_renders_offline(tiny_params, tiny_cache, tmp_path):
    tiny_params["evaluate"] = {"thresholds_dbz": [20, 35, 40, 50], "headline_dbz": 35, "fss_scales": [1, 3],
                               "max_windows": 3, "prob_max_windows": 3, "steps_members": 2, "bootstrap_n": 200}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    _checkpoint(tiny_cache, tmp_path / "checkpoints" / "phase3_best.pt")
    _probability_head(tiny_cache, tmp_path / "checkpoints" / "probability.pt")
    out = tmp_path / "reports" / "evaluate_report.ipynb"
    out.parent.mkdir()
    _run(BIN / "papermill", NOTEBOOK, out, "-k", "python3", "-p", "params_path", "params.yaml",
         "-p", "model_path", "checkpoints/phase3_best.pt", "-p", "probability_path", "checkpoints/probability.pt",
         "-p", "n_examples", "1", "--cwd", tmp_path)
    methods = ["model", "persistence", "optical_flow", "titan_style"]
    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert list(metrics)[:4] == methods and "bss35_t+5" in metrics["model_probability"]
    for name in ("scores.csv", "csi35_by_lead.csv", "cells.csv", "csi_intervals.csv", "prob_scores.csv",
                 "prob_reliability.csv", "prob_intervals.csv"):
        assert (tmp_path / "reports" / "evaluation" / name).is_file()
    executed = json.loads(out.read_text())
    images = [o for c in executed["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    # CSI by lead, the differences with their intervals, move-or-grow panels, BSS by lead, reliability, one probability map, one example window
    assert len(images) >= 7, len(images)
    maps = next(c for c in executed["cells"] if "viz.plot_probability(" in "".join(c["source"]))
    assert sum("image/png" in o.get("data", {}) for o in maps["outputs"]) == 1   # n_examples 1: one window's probability maps
    _run(BIN / "jupyter", "nbconvert", "--to", "html", "--log-level", "WARN", out)
    html = out.with_suffix(".html").read_text()
    assert "CSI at 35 dBZ against lead time" in html and "TITAN-style" in html
    assert "observed t+5" in html   # how much echo each threshold's CSI is pooled from
    assert "How sure: the model against each baseline" in html and "Against optical flow" in html   # (3 test events: no interval)
    for section in ("The chance of a storm: probabilities", "Brier skill by lead", "Reliability: what a stated chance turned out to mean",
                    "Probability maps", "Scored on 3 of the 3 test windows", "What training bought at 35 dBZ",
                    "Against STEPS ensemble (pysteps) ", "probability: model, trained probability"):
        assert section in html, section
    assert "when the trained probability says" in html or "seldom says more than 10%" in html   # the reliability sentence
    assert str(tmp_path) not in html   # no local paths
    assert not [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("name") == "stderr"]   # no warnings shown
    with (tmp_path / "reports" / "evaluation" / "scores.csv").open() as f:   # the CSI rows (a probability's rows: BSS alone)
        rows = [r for r in csv.DictReader(f) if r["field"] == "cmax" and r["method"] in methods]
    assert all(0 <= float(r["windows_observed"]) <= float(r["windows"]) == 3 for r in rows)
    assert any(float(r["windows_observed"]) > 0 for r in rows if float(r["threshold_dbz"]) == 20)
