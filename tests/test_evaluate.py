"`nowcast evaluate`: the CLI on a tiny prepared cache and checkpoint (CPU, seconds)."
import json

import pytest
import torch
import yaml

from nowcast.evaluate import cli_main, evaluate

METHODS = ["persistence", "optical_flow", "titan_style"]


@pytest.fixture
def params_file(tiny_params, tmp_path):
    "A params.yaml pointing at the tiny cache, evaluating at most 3 windows."
    p = dict(tiny_params, evaluate={"thresholds_dbz": [20, 35, 40, 50], "headline_dbz": 35, "fss_scales": [1, 3],
                                    "core_dbz": 50, "core_radius_km": 5.0, "max_windows": 3})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(p))
    return path


@pytest.fixture
def checkpoint(tiny_cache, tmp_path):
    "A checkpoint as the training stages leave it (docs/architecture.md), random weights."
    from nowcast import models
    from nowcast.data import load_cache
    cache = load_cache(tiny_cache)
    torch.manual_seed(0)
    kwargs = dict(n_levels=int(cache.shape[1]), n_in=cache.n_in, n_out=cache.n_out, hidden=[4, 4], groups=1)
    model = models.get_model("ConvLSTM3D_Enhanced", **kwargs)
    path = tmp_path / "checkpoints" / "phase3_best.pt"
    path.parent.mkdir()
    torch.save({"model": model.state_dict(), "model_config": {"name": "ConvLSTM3D_Enhanced", "kwargs": kwargs},
                "params": {}, "phase": "phase3", "epoch": 1, "step": 1, "best_val": 0.0}, path)
    return path


def _read_outputs(reports):
    metrics = json.loads((reports / "metrics.json").read_text())
    csi_header = (reports / "evaluation" / "csi35_by_lead.csv").read_text().splitlines()[0]
    return metrics, csi_header


def test_cli_scores_model_and_baselines(params_file, checkpoint, tmp_path, capsys):
    reports = tmp_path / "reports"
    rc = cli_main(["--params", str(params_file), "--model-path", str(checkpoint), "--reports-dir", str(reports)])
    assert rc == 0
    metrics, header = _read_outputs(reports)
    assert list(metrics) == ["model"] + METHODS
    for m in metrics.values():  # flat: numbers or null, what `dvc metrics diff` compares
        assert {"csi35_mean", "csi35_t+15", "fss35", "mae", "core_survival_t+15", "s_per_window"} <= set(m)
        assert all(v is None or isinstance(v, (int, float)) for v in m.values())
    assert header == "lead_min," + ",".join(["model"] + METHODS)
    assert (reports / "evaluation" / "scores.csv").is_file() and (reports / "evaluation" / "cells.csv").is_file()
    assert "lead_min" in capsys.readouterr().out


def test_cli_baselines_only_without_checkpoint(params_file, tmp_path):
    reports = tmp_path / "reports"
    assert cli_main(["--params", str(params_file), "--model-path", "none", "--reports-dir", str(reports)]) == 0
    metrics, header = _read_outputs(reports)
    assert list(metrics) == METHODS and header == "lead_min," + ",".join(METHODS)


def test_max_windows_bounds_and_is_deterministic(tiny_params):
    tiny_params["evaluate"] = {"max_windows": 2, "methods": ["persistence"], "fss_scales": [1]}
    a, b = evaluate(tiny_params), evaluate(tiny_params)
    assert len(a.windows) == 2 and list(a.windows) == list(b.windows)
    untimed = lambda r: {k: v for k, v in r.metrics["persistence"].items() if k != "s_per_window"}
    assert untimed(a) == untimed(b)


def test_missing_checkpoint_is_a_clear_error(params_file, tmp_path, capsys):
    missing = tmp_path / "nope.pt"
    assert cli_main(["--params", str(params_file), "--model-path", str(missing), "--reports-dir", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert str(missing) in err and "checkpoint not found" in err
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_corrupt_checkpoint_is_a_clear_error(params_file, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert cli_main(["--params", str(params_file), "--model-path", str(bad), "--reports-dir", str(tmp_path / "r")]) == 1
    assert str(bad) in capsys.readouterr().err


def test_missing_cache_is_a_clear_error(tmp_path, capsys):
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({"prepare": {"cache_dir": str(tmp_path / "no_cache")}}))
    assert cli_main(["--params", str(p), "--model-path", "none", "--reports-dir", str(tmp_path / "r")]) == 1
    assert "not a prepared cache" in capsys.readouterr().err


@pytest.mark.parametrize("methods, words", [
    (["model", "persistence", "optical_flow"], "(optical flow: 14.5 km, persistence: 17.9 km), area ratio 1.61: its storms "
                                               "move with the observed storms (as close to them as optical flow's) and grow."),
    (["model", "persistence"], "(persistence: 17.9 km), area ratio 1.61: its storms stay about where they were "
                               "(like persistence) and grow."),   # no motion baseline evaluated: persistence's rule
], ids=["with_optical_flow", "persistence_only"])
def test_move_or_grow_on_the_real_radar_test_split(methods, words):
    "The evaluation report's sentence with the real test split's distances: the model's cells as close as optical flow's."
    from types import SimpleNamespace
    import pandas as pd
    from nowcast.evaluate import move_or_grow
    km = {"model": 14.5, "persistence": 17.9, "optical_flow": 14.5}
    cells = pd.DataFrame({"method": methods, "lead_min": [35.0] * len(methods), "displacement_km": [km[m] for m in methods],
                          "area_ratio": [1.61] + [1.0] * (len(methods) - 1)})
    assert move_or_grow(SimpleNamespace(cells=cells)) == f"At t+35 min the model's cells are 14.5 km from the observed cells {words}"
