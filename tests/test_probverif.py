"Edge cases of nowcast.probverif that the notebook's examples do not show: missing pixels, pairing, seeds, draws."
import numpy as np
import pytest

from nowcast.probverif import ProbBoard, block_draws, block_sums, bss_from_sums, resampled_bss
from nowcast.verification import _percentiles, _resampled_csi, paired_block_bootstrap

THR, LEADS = [35.0, 45.0], [5, 10]


def _windows(n=6, seed=0, size=12):
    "n windows of (obs [2, size, size] dBZ, missing mask, probabilities [2 thr, 2 leads, size, size])."
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        obs = np.where(rng.random((2, size, size)) < rng.uniform(0.2, 0.5), rng.uniform(35, 55, (2, size, size)), 5.0)
        miss = rng.random((2, size, size)) < 0.1
        o = np.stack([obs >= t for t in THR]).astype(np.float32)
        p = np.clip(0.6 * o + 0.4 * rng.random(o.shape), 0, 1).astype(np.float32)
        out.append((obs, miss, p))
    return out


def _board(windows, methods=("a", "b"), order=None, ids=False, seed=1):
    rng = np.random.default_rng(seed)
    board = ProbBoard(THR, LEADS)
    for m in methods:
        for w in (range(len(windows)) if order is None or m == methods[0] else order):
            obs, miss, p = windows[w]
            q = p if m == methods[0] else np.clip(p + rng.normal(0, 0.2, p.shape), 0, 1).astype(np.float32)
            board.add(m, obs, miss, q, **(dict(window=w) if ids else {}))
    return board


def test_missing_pixels_are_left_out_whatever_they_hold():
    # scoring a field with a missing column equals scoring the field without that column, whatever the
    # observation (NaN, an echo) and the probability (NaN, out of range) hold there
    obs, miss, p = _windows(1)[0]
    miss[:] = False
    miss[:, :, 0] = True
    dirty_obs, dirty_p = obs.copy(), p.copy()
    dirty_obs[0, :, 0], dirty_obs[1, :, 0] = np.nan, 60.0
    dirty_p[..., 0] = np.where(np.arange(12) % 2, np.nan, 7.0)
    full = ProbBoard(THR, LEADS).add("m", dirty_obs, miss, dirty_p)
    cut = ProbBoard(THR, LEADS).add("m", obs[..., 1:], miss[..., 1:], p[..., 1:])
    np.testing.assert_array_equal(full.per_window("m"), cut.per_window("m"))
    np.testing.assert_array_equal(full.sums["m"], cut.sums["m"])
    assert (full.per_window("m")[..., 2] == 12 * 11).all()
    # a NaN observation counts as missing even where the mask says observed
    nan_obs = obs.copy(); nan_obs[:, :, 0] = np.nan
    np.testing.assert_array_equal(ProbBoard(THR, LEADS).add("m", nan_obs, np.zeros_like(miss), p).per_window("m"),
                                  cut.per_window("m"))
    # but a bad probability at an observed pixel is an error that names the method
    bad = p.copy(); bad[0, 0, 5, 5] = np.nan
    with pytest.raises(ValueError, match="'m'.*1 scored pixels"):
        ProbBoard(THR, LEADS).add("m", obs, miss, bad)


def test_pooled_sums_are_the_sum_of_the_windows():
    board = _board(_windows())
    pw = board.per_window("a")
    from nowcast.probverif import window_sums
    np.testing.assert_allclose(pw.sum(0), window_sums(board.sums["a"]).swapaxes(0, 1), rtol=1e-12)
    tab = board.table()
    row = tab[(tab.method == "a") & (tab.threshold_dbz == 45) & (tab.lead_min == 10)].iloc[0]
    s = pw[:, 1, 1].sum(0)
    assert row.brier == pytest.approx(s[0] / s[2]) and row.obar == pytest.approx(s[1] / s[2])
    assert row.bss == pytest.approx(1 - row.brier / (row.obar * (1 - row.obar)))


def test_windows_added_in_another_order_are_caught():
    wins = _windows()
    shuffled = [3, 1, 2, 0, 4, 5]
    with pytest.raises(ValueError, match="other observations in window 0"):
        _board(wins, order=shuffled).intervals("a", np.arange(6))
    with pytest.raises(ValueError, match="same windows in the same order"):
        _board(wins, order=shuffled, ids=True).intervals("a", np.arange(6))
    ok = _board(wins, order=range(6), ids=True).intervals("a", np.arange(6))
    assert ok.lo.notna().all()
    with pytest.raises(ValueError, match="window 2 was added already"):
        ProbBoard(THR, LEADS).add("a", *wins[2], window=0).add("a", *wins[3], window=2).add("a", *wins[4], window=2)


def test_seed_fixes_the_draws_and_another_seed_changes_them():
    board = _board(_windows(12))
    blocks = np.arange(12) // 2
    a, b = board.intervals("a", blocks, seed=3), board.intervals("a", blocks, seed=3)
    assert a.equals(b)
    c = board.intervals("a", blocks, seed=4)
    np.testing.assert_array_equal(a["diff"], c["diff"])          # the point estimate does not depend on the draws
    assert not np.allclose(a.lo, c.lo)
    assert board.table(blocks, seed=3).equals(board.table(blocks, seed=3))


def test_the_draws_are_paired_block_bootstraps_draws():
    # the CSI interval of nowcast.verification, recomputed from block_draws and block_sums: identical, so that
    # the CSI and the BSS intervals of one evaluation resample the same blocks
    rng = np.random.default_rng(0)
    ca, cb = rng.integers(0, 50, (30, 2, 3, 4)), rng.integers(0, 50, (30, 2, 3, 4))
    blocks = rng.integers(0, 9, 30)
    r = paired_block_bootstrap(ca, cb, blocks, n_boot=500, seed=7)
    sa, sb = block_sums(ca, blocks), block_sums(cb, blocks)
    d = block_draws(len(sa), 500, 7)
    lo, hi = _percentiles(_resampled_csi(sa, d) - _resampled_csi(sb, d), 0.95)
    np.testing.assert_allclose(lo, r["lo"], rtol=1e-12)
    np.testing.assert_allclose(hi, r["hi"], rtol=1e-12)


def test_resampled_bss_is_the_bss_of_the_drawn_windows():
    # the vectorised draw equals pooling the drawn blocks' windows one by one
    board = _board(_windows(8))
    blocks = np.array([0, 0, 1, 2, 2, 2, 3, 4])
    pw = board.per_window("b")
    draws = block_draws(5, 20, seed=1)
    fast = resampled_bss(block_sums(pw, blocks), draws)
    for i, d in enumerate(draws):
        picked = np.concatenate([np.flatnonzero(blocks == k) for k in range(5) for _ in range(d[k])])
        np.testing.assert_allclose(fast[i], bss_from_sums(pw[picked].sum(0)), rtol=1e-12)


def test_no_interval_where_too_few_blocks_hold_the_event():
    wins = _windows(4)
    for obs, _, _ in wins[1:]: obs[obs >= 45] = 40.0             # 45 dBZ observed in the first window only
    iv = _board(wins).intervals("a", np.arange(4))
    at45 = iv[iv.threshold_dbz == 45]
    assert (at45.event_blocks == 1).all() and at45.lo.isna().all() and set(at45.words) == {"undefined"}
    assert iv[iv.threshold_dbz == 35].lo.notna().all()
    assert _board(wins).intervals("a", np.arange(4), min_blocks=5).lo.isna().all()


def test_a_deterministic_forecast_as_bool():
    obs, miss, _ = _windows(1)[0]
    miss[:] = False
    fc = np.roll(obs, 2, axis=-1)
    det = np.stack([fc >= t for t in THR])                      # bool 0/1 probabilities
    row = ProbBoard(THR, LEADS).add("d", obs, miss, det).table().iloc[0]   # 35 dBZ, 5 min
    o, f = obs[0] >= 35, fc[0] >= 35
    assert row.brier == pytest.approx((o != f).mean())
    pod, pofd = (o & f).sum() / o.sum(), (~o & f).sum() / (~o).sum()
    assert row.auc == pytest.approx((1 + pod - pofd) / 2)       # the ROC of a yes/no forecast: one point
    assert row.reliability - row.resolution + row.uncertainty == pytest.approx(row.brier, abs=1e-12)


def test_members_all_or_none_and_finite():
    obs, miss, p = _windows(1)[0]
    ens = obs[None] + np.zeros((3, 1, 1, 1))
    board = ProbBoard(THR, LEADS).add("e", obs, miss, p, members=ens)
    with pytest.raises(ValueError, match="some windows and not for others"):
        board.add("e", obs, miss, p)
    assert np.allclose(board.table().crps, 0, atol=1e-6)         # members equal to the observation (float32 sums)
    bad = ens.copy(); bad[1, 0, ~miss[0]] = np.nan
    with pytest.raises(ValueError, match="'e'.*member"):
        ProbBoard(THR, LEADS).add("e", obs, miss, p, members=bad)
    assert ProbBoard(THR, LEADS).add("e", obs, np.zeros_like(miss), p).table().crps.isna().all()
