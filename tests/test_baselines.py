"Edge cases of nowcast.baselines: bad input, missing data, no echo, reproducibility."
import logging

import numpy as np
import pytest
from scipy import ndimage

from nowcast.baselines import METHODS, NO_ECHO_DBZ, get_method, optical_flow, persistence, titan_style


def blob(ny=40, nx=40, cy=20.0, cx=20.0, s=4.0, peak=55.0):
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    return (-10 + (peak + 10) * np.exp(-0.5 * (((x - cx) / s) ** 2 + ((y - cy) / s) ** 2))).astype(np.float32)


def moving(n, vy, vx, start=(20.0, 20.0)):
    return np.stack([blob(cy=start[0] + vy * k, cx=start[1] + vx * k) for k in range(n)])[:, None]


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_shape_dtype_finite_and_reproducible(name):
    seq = moving(5, 1.0, -1.0)
    missing = np.zeros(seq.shape, bool); missing[-1, :, :5, :5] = True
    seq_nan = seq.copy(); seq_nan[-2, 0, 30, 30] = np.nan
    f = get_method(name)
    a = f(seq_nan, 3, missing=missing, dx_km=2.0, cadence_s=300)
    b = f(seq_nan, 3, missing=missing, dx_km=2.0, cadence_s=300)
    assert a.shape == (3, 1, 40, 40) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", list(METHODS))
def test_bad_input_is_a_clear_error(name):
    f = get_method(name)
    with pytest.raises(ValueError, match="n_in, Z, Y, X"):
        f(np.zeros((4, 10, 10)), 2, dx_km=1.0, cadence_s=300)
    with pytest.raises(ValueError, match="missing mask shape"):
        f(np.zeros((2, 1, 10, 10)), 2, missing=np.zeros((2, 10, 10), bool), dx_km=1.0, cadence_s=300)
    with pytest.raises(ValueError, match="n_out"):
        f(np.zeros((2, 1, 10, 10)), 0, dx_km=1.0, cadence_s=300)


def test_optical_flow_without_echo_or_history_falls_back_to_persistence(caplog):
    empty = np.full((3, 2, 12, 12), NO_ECHO_DBZ, np.float32)
    with caplog.at_level(logging.WARNING, logger="nowcast.baselines"):
        out = optical_flow(empty, 2)
    assert "persistence" in caplog.text
    np.testing.assert_array_equal(out, persistence(empty, 2))
    one = moving(1, 0, 0)
    np.testing.assert_array_equal(optical_flow(one, 2), persistence(one, 2))


@pytest.mark.parametrize("vy,vx", [(1.5, 1.5), (-1.0, 0.5)])
def test_titan_style_follows_the_motion(vy, vx):
    seq = moving(10, vy, vx, start=(14.0, 14.0) if vy > 0 else (26.0, 14.0))
    fc = titan_style(seq[:6], 4, dx_km=2.0, cadence_s=300)
    for lead in range(4):
        got = ndimage.center_of_mass(fc[lead, 0] >= 35)
        want = ndimage.center_of_mass(seq[6 + lead, 0] >= 35)
        assert np.abs(np.subtract(got, want)).max() < 1.0


def test_titan_style_moves_two_cells_independently():
    a = moving(6, 0.0, 1.5, start=(10.0, 8.0))
    b = moving(6, 0.0, -1.5, start=(30.0, 32.0))
    fc = titan_style(np.maximum(a, b), 2, dx_km=2.0, cadence_s=300)
    labels, n = ndimage.label(fc[-1, 0] >= 35)
    assert n == 2
    xs = sorted(ndimage.center_of_mass(fc[-1, 0] >= 35, labels, [1, 2]), key=lambda c: c[0])
    assert xs[0][1] == pytest.approx(8 + 1.5 * 7, abs=1) and xs[1][1] == pytest.approx(32 - 1.5 * 7, abs=1)


def test_titan_style_result_does_not_depend_on_units():
    seq = moving(6, 1.0, 1.0)
    np.testing.assert_array_equal(titan_style(seq, 3, dx_km=1.0, cadence_s=300, min_area_km2=7.5),
                                  titan_style(seq, 3, dx_km=2.0, cadence_s=600, min_area_km2=30))


# --- probabilistic baselines -------------------------------------------------------------------------------

from nowcast.baselines import (PROB_METHODS, METHOD_LABELS, get_prob_method, lagrangian_probability,  # noqa: E402
                               steps_probability)


def block(n=8, ny=40, nx=48, y0=14, x0=6, speed=2, size=12, dbz=45.0, seed=0):
    "A noisy square of storm moving `speed` px per scan east, [n, 1, Y, X] dBZ."
    rng = np.random.default_rng(seed)
    out = np.full((n, 1, ny, nx), NO_ECHO_DBZ, np.float32)
    for k in range(n):
        out[k, 0, y0:y0 + size, x0 + speed * k:x0 + speed * k + size] = dbz + rng.normal(0, 2.0, (size, size))
    return out


def prob(name, seq, n_out, thresholds, **kw):
    out = get_prob_method(name)(seq, n_out, thresholds, dx_km=2.0, cadence_s=300, **kw)
    return out[0] if name == "steps" else out


@pytest.mark.parametrize("name", list(PROB_METHODS))
def test_probability_shape_range_and_missing(name):
    seq = np.repeat(block(), 3, axis=1)  # three levels: the column maximum is forecast
    seq[:, 1] -= 5.0
    missing = np.zeros(seq.shape, bool); missing[-1, :, :6, :6] = True
    seq[-2, 0, 30, 30] = np.nan
    p = prob(name, seq, 4, [20.0, 35.0, 46.0], missing=missing)
    assert p.shape == (3, 4, 40, 48) and p.dtype == np.float32
    assert np.isfinite(p).all() and p.min() >= 0.0 and p.max() <= 1.0
    assert (p[0] >= p[1]).all() and (p[1] >= p[2]).all()  # higher thresholds are reached less often
    assert p[1].max() > 0.5 and 0 < p[2].mean() < p[1].mean() / 2  # the block is 45 +- 2 dBZ


@pytest.mark.parametrize("name", list(PROB_METHODS))
def test_moving_storm_is_likelier_ahead_than_behind(name):
    p = prob(name, block(), 7, [35.0])[0]
    rows = slice(14, 26)  # last scan: x 20-32; after 4 scans 28-40
    ahead, behind = p[3, rows, 28:40].mean(), p[3, rows, 4:16].mean()
    assert ahead > 0.5 and behind < 0.05, (ahead, behind)
    assert p[6, rows, 34:46].mean() > p[6, rows, 8:20].mean() + 0.3


@pytest.mark.parametrize("name", list(PROB_METHODS))
def test_no_echo_gives_probability_zero_with_a_message(name, caplog):
    empty = np.full((4, 2, 16, 16), NO_ECHO_DBZ, np.float32)
    with caplog.at_level(logging.WARNING, logger="nowcast.baselines"):
        p = prob(name, empty, 3, [20.0, 35.0])
    np.testing.assert_array_equal(p, np.zeros((2, 3, 16, 16), np.float32))
    assert "no echo" in caplog.text and name.split("_")[0] in caplog.text


def test_steps_no_echo_members_are_persistence():
    empty = np.full((4, 1, 16, 20), NO_ECHO_DBZ, np.float32)
    _, members = steps_probability(empty, 3, [20.0], dx_km=2.0, cadence_s=300, n_members=4)
    np.testing.assert_array_equal(members, np.full((4, 3, 16, 20), NO_ECHO_DBZ, np.float32))


def test_steps_is_seeded_and_its_probability_is_the_members_fraction():
    seq = block()
    p, members = steps_probability(seq, 5, [20.0, 35.0, 45.0], dx_km=2.0, cadence_s=300)
    assert members.shape == (10, 5, 40, 48) and members.dtype == np.float32 and members.min() >= NO_ECHO_DBZ
    p2, members2 = steps_probability(seq, 5, [20.0, 35.0, 45.0], dx_km=2.0, cadence_s=300)
    np.testing.assert_array_equal(members, members2); np.testing.assert_array_equal(p, p2)
    other = steps_probability(seq, 5, [35.0], dx_km=2.0, cadence_s=300, seed=1)[1]
    assert not np.array_equal(other, members)
    # thresholds and members in the same units: the probability is the fraction of dBZ members reaching dBZ T
    for k, t in enumerate([20.0, 35.0, 45.0]):
        np.testing.assert_allclose(p[k], (members >= t).mean(axis=0), atol=1e-6)
    assert 0 < p[2].mean() < p[1].mean()  # 45 dBZ: the block's median, reached by some members


def test_steps_cascade_levels_follow_the_grid_unless_given():
    seq = block(ny=16, nx=48, y0=2)  # 16 px: 4 levels chosen automatically
    p, members = steps_probability(seq, 2, [35.0], dx_km=2.0, cadence_s=300, n_members=3)
    assert members.shape == (3, 2, 16, 48)
    given = steps_probability(seq, 2, [35.0], dx_km=2.0, cadence_s=300, n_members=3, n_cascade_levels=3)[1]
    assert not np.array_equal(given, members)


def test_steps_rigid_field_falls_back_to_optical_flow(caplog):
    yy, xx = np.mgrid[0:250, 0:250]
    rigid = np.stack([np.where((yy - 125) ** 2 + (xx - 62.5 - 2 * k) ** 2 < (250 / 6) ** 2, 40.0, -10.0)
                      for k in range(4)])[:, None].astype(np.float32)
    with caplog.at_level(logging.WARNING, logger="nowcast.baselines"):
        p, members = steps_probability(rigid, 3, [35.0], dx_km=2.0, cadence_s=300, n_members=3)
    assert "nonstationary" in caplog.text and "optical-flow" in caplog.text
    flow = optical_flow(rigid, 3)[:, 0]
    for m in members:
        np.testing.assert_allclose(m, flow, atol=1e-3)
    np.testing.assert_array_equal(p[0], (flow >= 35.0).astype(np.float32))


def test_lagrangian_slope_is_in_km_per_minute():
    seq = block()
    # the neighbourhood grows in km per minute: half the pixel size and twice the slope give the same pixels
    np.testing.assert_array_equal(lagrangian_probability(seq, 4, [35.0], dx_km=1.0, cadence_s=300),
                                  lagrangian_probability(seq, 4, [35.0], dx_km=2.0, cadence_s=300, slope_km_per_min=2.0))
    # no growth: the probability is the optical-flow extrapolation, 0 or 1
    flat = lagrangian_probability(seq, 4, [35.0], dx_km=2.0, cadence_s=300, slope_km_per_min=0.0)
    np.testing.assert_array_equal(flat[0], (optical_flow(seq, 4)[:, 0] >= 35.0).astype(np.float32))
    wide = lagrangian_probability(seq, 4, [35.0], dx_km=2.0, cadence_s=300)
    assert ((wide[0, -1] > 0) & (wide[0, -1] < 1)).sum() > ((flat[0, -1] > 0) & (flat[0, -1] < 1)).sum()


@pytest.mark.parametrize("name", list(PROB_METHODS))
def test_probability_bad_input_is_a_clear_error(name):
    with pytest.raises(ValueError, match="thresholds"):
        prob(name, block(), 2, [])
    with pytest.raises(ValueError, match="thresholds"):
        prob(name, block(), 2, [35.0, np.nan])
    with pytest.raises(ValueError, match="n_in, Z, Y, X"):
        prob(name, block()[:, 0], 2, [35.0])


def test_prob_registry():
    assert get_prob_method("lagrangian_probability") is lagrangian_probability
    assert METHOD_LABELS["steps"] == "STEPS ensemble (pysteps)"
    with pytest.raises(ValueError, match="unknown probabilistic baseline 'sprog'; known: steps"):
        get_prob_method("sprog")
