"`nowcast evaluate`: the CLI on a tiny prepared cache and checkpoint (CPU, seconds)."
import json

import pytest
import torch
import yaml

from nowcast.evaluate import cli_main, evaluate

METHODS = ["persistence", "optical_flow", "titan_style"]
INTERVAL_COLUMNS = ["method", "threshold_dbz", "lead_min", "model_csi", "baseline_csi", "diff", "lo", "hi", "words", "blocks", "event_blocks",
                    "n_boot", "block_by", "level"]


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


def _read_intervals(reports):
    import pandas as pd
    return pd.read_csv(reports / "evaluation" / "csi_intervals.csv")


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
    intervals = _read_intervals(reports)
    assert list(intervals.columns) == INTERVAL_COLUMNS
    assert len(intervals) == len(METHODS) * 4 * 3   # baselines x thresholds x leads
    assert set(intervals.method) == set(METHODS) and set(intervals.n_boot) == {2000} and set(intervals.block_by) == {"event"}
    # the tiny test split is one event: one block, nothing to resample, so no interval and no claim
    assert set(intervals.blocks) == {1} and intervals.lo.isna().all() and set(intervals.words) == {"undefined"}


def test_cli_baselines_only_without_checkpoint(params_file, tmp_path):
    reports = tmp_path / "reports"
    assert cli_main(["--params", str(params_file), "--model-path", "none", "--reports-dir", str(reports)]) == 0
    metrics, header = _read_outputs(reports)
    assert list(metrics) == METHODS and header == "lead_min," + ",".join(METHODS)
    assert not (reports / "evaluation" / "csi_intervals.csv").exists()   # no model, no intervals


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


@pytest.mark.parametrize("lo, hi, words", [(0.01, 0.2, "beats"), (-0.05, 0.1, "level with"), (0.0, 0.0, "level with"),
                                           (-0.2, -0.001, "below"), (float("nan"), float("nan"), "undefined")])
def test_words_follow_the_interval(lo, hi, words):
    from nowcast.verification import interval_words
    assert interval_words(lo, hi) == words


def _counts(hit_frac, events, false_alarms=20):
    "Per-window counts [n_windows, 1 lead, 1 threshold, 4] with the given fraction of each window's observed pixels hit."
    import numpy as np
    hits = np.clip(np.asarray(hit_frac) * events, 0, events).astype(int)
    return np.stack([hits, events - hits, np.full_like(hits, false_alarms), np.full_like(hits, 1000)], -1)[:, None, None]


def test_bootstrap_is_paired_and_by_block():
    import numpy as np
    from nowcast.verification import paired_block_bootstrap
    rng = np.random.default_rng(3)
    blocks = np.repeat(np.arange(8), 5)                       # 8 events of 5 windows
    events = rng.integers(50, 150, 8)[blocks]
    swing = rng.uniform(0.2, 0.8, 8)[blocks]                   # both methods' CSI swings with the event...
    r = paired_block_bootstrap(_counts(swing + 0.1, events), _counts(swing, events), blocks)
    width = float(r["hi"][0, 0] - r["lo"][0, 0])
    assert 0 < width < 0.03 and r["lo"][0, 0] > 0   # ...but one draw for both: the constant edge stays sharp (paired)
    unpaired = paired_block_bootstrap(_counts(swing + 0.1, events), _counts(swing[::-1], events[::-1]), blocks)
    assert float(unpaired["hi"][0, 0] - unpaired["lo"][0, 0]) > 5 * width
    # by block: five copies of each window in its block give exactly the interval of one window per block;
    # resampling single windows would take the copies for evidence and narrow it
    edge = rng.uniform(-0.1, 0.3, 8)
    one = paired_block_bootstrap(_counts(0.4 + edge, events[::5]), _counts(np.full(8, 0.4), events[::5]), np.arange(8))
    five = paired_block_bootstrap(_counts(0.4 + edge[blocks], events), _counts(np.full(40, 0.4), events), blocks)
    np.testing.assert_allclose([five["lo"], five["hi"]], [one["lo"], one["hi"]])
    by_window = paired_block_bootstrap(_counts(0.4 + edge[blocks], events), _counts(np.full(40, 0.4), events), np.arange(40))
    assert (by_window["hi"] - by_window["lo"]) < 0.7 * (five["hi"] - five["lo"])
    assert (five["n_blocks"], by_window["n_blocks"]) == (8, 40)


def test_intervals_of_a_scoreboard_follow_the_model(tiny_cache):
    "csi_intervals on a Scoreboard: a model that is persistence is level with persistence and below the observation itself."
    import numpy as np
    from nowcast.cache import load_cache
    from nowcast.evaluate import baseline_forecaster, block_labels, csi_intervals, read_window
    from nowcast.verification import Scoreboard
    cache = load_cache(tiny_cache)
    starts = np.concatenate([cache.windows[s] for s in ("train", "val", "test")])
    board = Scoreboard([20, 35], leads=[5, 10, 15], scales=[1], per_level=False)
    pers = baseline_forecaster("persistence", cache.n_out, dx_km=float(cache.grid.dx_km), cadence_s=300)
    for s in starts:
        w = read_window(cache, s)
        board.add("model", w.obs, pers(w), w.obs_missing).add("persistence", w.obs, pers(w), w.obs_missing)
        board.add("oracle", w.obs, w.obs, w.obs_missing)
    iv = csi_intervals(board, block_labels(cache, starts), n_boot=300)   # min_blocks 2: the tiny split has 3 events
    assert list(iv.columns) == INTERVAL_COLUMNS and set(iv.blocks) == {3} and set(iv.method) == {"persistence", "oracle"}
    same = iv[(iv.method == "persistence") & iv.lo.notna()]
    assert len(same) and set(same.words) == {"level with"} and (same["diff"] == 0).all()
    worse = iv[(iv.method == "oracle") & (iv.model_csi < 1) & iv.lo.notna()]
    assert len(worse) and set(worse.words) == {"below"}
    assert iv.words.tolist() == [("undefined" if not np.isfinite(lo) else "beats" if lo > 0 else "below" if hi < 0
                                  else "level with") for lo, hi in zip(iv.lo, iv.hi)]
