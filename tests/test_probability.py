"""The probability head through the user's commands: `nowcast probability` (the fourth phase) on a tiny cache, then
`nowcast evaluate` scoring it against its untrained start and pysteps' probabilistic baselines (CPU, seconds)."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from nowcast.cli import main
from nowcast.probability import ProbabilityHead


@pytest.fixture
def project(tiny_params, tiny_cache, tmp_path, monkeypatch):
    "A folder with params.yaml and a phase-3 checkpoint (random weights), as the training stages leave them."
    from nowcast import models
    from nowcast.data import load_cache
    cache = load_cache(tiny_cache)
    torch.manual_seed(0)
    kwargs = dict(n_levels=int(cache.shape[1]), n_in=cache.n_in, n_out=cache.n_out, hidden=[4, 4], groups=1)
    ck = tmp_path / "checkpoints" / "phase3_best.pt"
    ck.parent.mkdir()
    torch.save({"model": models.get_model("ConvLSTM3D_Enhanced", **kwargs).state_dict(),
                "model_config": {"name": "ConvLSTM3D_Enhanced", "kwargs": kwargs}, "params": {}, "phase": "phase3",
                "epoch": 1, "step": 1, "best_val": 0.0}, ck)
    p = dict(tiny_params, evaluate={"thresholds_dbz": [20, 35, 40], "headline_dbz": 35, "fss_scales": [1, 3],
                                    "max_windows": 0, "prob_max_windows": 3, "steps_members": 3, "bootstrap_n": 200},
             probability={"fit_split": "val", "pixels_per_window": 64, "radii_px": [0, 1, 2, 4], "iters": 20})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _train(project):
    return main(["probability", "--params", "params.yaml", "--model-path", "checkpoints/phase3_best.pt",
                 "--out", "checkpoints/probability.pt", "--report", "reports/probability_train.json"])


def test_the_fourth_phase_writes_a_head_and_its_report(project):
    assert _train(project) == 0
    head = ProbabilityHead.load(project / "checkpoints/probability.pt")
    assert head.thresholds == [20.0, 35.0, 40.0] and head.weights.shape == (3, 3, len(head.radii) + 3 + 1)
    rep = json.loads((project / "reports/probability_train.json").read_text())
    assert rep["fit_split"] == "val" and rep["train_pixels"] > 0
    assert np.array(rep["logscore_trained"]).shape == (3, 3)
    # the fit lowers the logarithmic score it minimises wherever the split holds the event
    before, after = np.array(rep["logscore_start"]), np.array(rep["logscore_trained"])
    assert (after <= before + 1e-9).all() and (after < before).any()
    w = head.weights.copy()
    assert _train(project) == 0   # the same params, the same head
    assert np.array_equal(ProbabilityHead.load(project / "checkpoints/probability.pt").weights, w)


def test_missing_model_and_bad_split_are_clear_errors(project, capsys):
    assert main(["probability", "--params", "params.yaml", "--model-path", "nope.pt"]) == 1
    assert "nope.pt" in capsys.readouterr().err
    p = yaml.safe_load((project / "params.yaml").read_text()); p["probability"]["fit_split"] = "test"
    (project / "params.yaml").write_text(yaml.safe_dump(p))
    assert _train(project) == 1
    assert "probability.fit_split" in capsys.readouterr().err


def test_evaluate_scores_the_probabilities(project):
    assert _train(project) == 0
    assert main(["evaluate", "--params", "params.yaml", "--model-path", "checkpoints/phase3_best.pt",
                 "--reports-dir", "reports"]) == 0   # the head beside the checkpoint is found
    ev = project / "reports/evaluation"
    t = pd.read_csv(ev / "prob_scores.csv")
    want = {"model_probability", "model_neighbourhood", "optical_flow_neighbourhood", "steps", "lagrangian_probability",
            "model", "persistence", "optical_flow", "titan_style"}
    assert want <= set(t.method) and set(t.windows) == {3}
    assert np.isfinite(t[t.method == "steps"].crps).all() and t[t.method == "model"].crps.isna().all()
    sc = pd.read_csv(ev / "scores.csv")
    assert {"brier", "bss"} <= set(sc.columns)
    cm = sc[(sc.field == "cmax") & (sc.method == "model_probability")]
    assert len(cm) == 3 * 3 and cm.csi.isna().all() and cm.bss.notna().any()
    m = json.loads((project / "reports/metrics.json").read_text())
    assert "bss35_t+5" in m["model_probability"] and "bss35_mean" in m["steps"]
    iv = pd.read_csv(ev / "prob_intervals.csv")
    assert set(iv.reference) == {"model_probability"} and "model_neighbourhood" in set(iv.method)
    rel = pd.read_csv(ev / "prob_reliability.csv")
    assert {"forecast_mean", "observed_freq", "pixels"} <= set(rel.columns)
