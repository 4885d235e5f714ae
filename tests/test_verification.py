"Edge cases of nowcast.verification that a notebook example would not show."
import warnings

import numpy as np
import pytest

from nowcast.verification import (Scoreboard, column_max, contingency, contingency_by_lead, fss, fss_sums,
                                  fss_from_sums, mae_where_echo, scores)


def test_threshold_is_applied_to_dbz_not_to_a_binarised_field():
    # obs has values equal to, just below and well above 35; the "binarise then threshold again" bug
    # (obs -> 0/1, then 0/1 >= 35) would see no observed event at all
    obs = np.array([35.0, 34.99, 60.0, 0.0, 1.0, 35.0])
    fc = np.array([36.0, 40.0, 20.0, 0.0, 35.0, 34.0])
    got = contingency(obs, fc, 35.0)
    assert got == dict(hits=1, misses=2, false_alarms=2, correct_negatives=1)
    buggy = contingency((obs >= 35).astype(float), fc, 35.0)
    assert buggy != got


def test_nan_and_missing_are_excluded_everywhere():
    obs = np.array([[40.0, np.nan], [40.0, 0.0]])
    fc = np.array([[40.0, 40.0], [np.nan, 0.0]])
    missing = np.array([[False, False], [False, True]])
    assert contingency(obs, fc, 35, missing) == dict(hits=1, misses=0, false_alarms=0, correct_negatives=0)
    assert np.isnan(mae_where_echo(obs * np.nan, fc, 10))


def test_counts_pool_over_windows():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0, 60, (2, 3, 10, 10)), rng.uniform(0, 60, (2, 3, 10, 10))
    together = contingency_by_lead(np.concatenate([a, b], 1), np.concatenate([b, a], 1), [20, 35])
    apart = contingency_by_lead(a, b, [20, 35]) + contingency_by_lead(b, a, [20, 35])
    np.testing.assert_array_equal(together, apart)
    assert together[..., :].sum(-1).tolist() == [[600, 600]] * 2  # every pixel counted once per threshold


def test_scores_undefined_are_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = scores(np.zeros((3, 2, 4), np.int64))
    assert all(np.isnan(v).all() for v in s.values())
    s = scores(dict(hits=0, misses=4, false_alarms=0, correct_negatives=1))
    assert s["csi"] == 0 and s["pod"] == 0 and np.isnan(s["far"]) and s["bias"] == 0


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="differ"):
        contingency(np.zeros((3, 3)), np.zeros((3, 4)), 35)
    with pytest.raises(ValueError, match="missing mask shape"):
        fss(np.zeros((3, 3)), np.zeros((3, 3)), 35, 3, missing=np.zeros((2, 2), bool))
    board = Scoreboard([35], leads=[1, 2])
    with pytest.raises(ValueError, match="expected \\[2, Z, Y, X\\]"):
        board.add("m", np.zeros((3, 1, 4, 4)), np.zeros((3, 1, 4, 4)))


def test_fss_of_a_stack_equals_pooled_levels():
    rng = np.random.default_rng(4)
    o, f = rng.uniform(0, 60, (3, 12, 12)), rng.uniform(0, 60, (3, 12, 12))
    pooled = sum(fss_sums(o[z], f[z], 30, 3) for z in range(3))
    assert fss_from_sums(pooled) == pytest.approx(fss(o, f, 30, 3))


def test_column_max_treats_nan_as_missing():
    v = np.array([[[np.nan]], [[np.nan]]])
    cmax, cmiss = column_max(v)
    assert cmiss.all() and np.isnan(cmax).all()


def test_scoreboard_excludes_missing_observations():
    obs = np.full((1, 2, 4, 4), 40.0, np.float32)
    fc = obs.copy(); fc[0, :, 0, 0] = 0.0  # wrong only in a column that was not observed
    missing = np.zeros(obs.shape, bool); missing[0, :, 0, 0] = True
    rows = Scoreboard([35], leads=[300], scales=[1]).add("m", obs, fc, missing).table()
    assert {r["field"] for r in rows} == {"cmax", "z00", "z01"}
    assert all(r["csi"] == 1.0 and r["misses"] == 0 and r["hits"] == 15 for r in rows)
