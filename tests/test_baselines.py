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
