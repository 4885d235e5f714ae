"Edge cases of nowcast.cells."
import numpy as np
import pytest

from nowcast.cells import (cell_measures, core_survival, extrapolate, identify_cells, match_cells, move_or_grow_words,
                           reference_words, track)


def blob(ny=48, nx=48, cy=24.0, cx=24.0, sy=4.0, sx=4.0, angle_deg=0.0, peak=55.0):
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    a = np.radians(angle_deg)
    u = (x - cx) * np.cos(a) + (y - cy) * np.sin(a)
    v = -(x - cx) * np.sin(a) + (y - cy) * np.cos(a)
    return (-10 + (peak + 10) * np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))).astype(np.float32)


def test_bad_dimensions_are_a_clear_error():
    with pytest.raises(ValueError, match="expected \\[Y, X\\] or \\[Z, Y, X\\]"):
        identify_cells(np.zeros(5), dx_km=1.0)


def test_empty_and_nan_fields_have_no_cells():
    assert identify_cells(np.full((8, 8), np.nan), dx_km=1.0) == []
    assert track(np.zeros((3, 8, 8)), dx_km=1.0, cadence_s=300) == []


@pytest.mark.parametrize("angle", [0.0, 45.0, 120.0])
def test_ellipse_of_an_elongated_cell(angle):
    (c,) = identify_cells(blob(sx=8, sy=2.5, angle_deg=angle), dx_km=1.0)
    d = abs(c.orientation_deg - angle) % 180
    assert min(d, 180 - d) < 3
    assert c.major_km / c.minor_km == pytest.approx(8 / 2.5, rel=0.15)
    assert np.pi * c.major_km * c.minor_km == pytest.approx(c.area_km2)


def test_grid_spacing_scales_km_measures():
    f = blob()
    (a,), (b,) = identify_cells(f, dx_km=1.0, min_area_km2=1), identify_cells(f, dx_km=2.0, min_area_km2=1)
    assert b.area_km2 == pytest.approx(4 * a.area_km2)
    assert b.major_km == pytest.approx(2 * a.major_km)
    assert np.allclose(b.centroid_km, 2 * np.array(a.centroid_km))


def test_matching_prefers_similar_size_and_respects_speed_limit():
    small = identify_cells(blob(cy=20, cx=20, sx=2.5, sy=2.5), dx_km=1.0, min_area_km2=1)
    # the later scan has a small cell 7 km away and a big one 6 km away: size decides
    later = identify_cells(np.maximum(blob(cy=20, cx=27, sx=2.5, sy=2.5), blob(cy=14, cx=20, sx=8, sy=3)),
                           dx_km=1.0, min_area_km2=1)
    assert len(later) == 2
    (pair,) = match_cells(small, later, dt_s=300)
    assert later[pair[1]].centroid_km == pytest.approx((20, 27), abs=0.5)
    assert match_cells(small, later, dt_s=60, max_speed_kmh=100) == []  # 1.7 km allowed in a minute


def test_track_starts_a_new_track_for_a_new_cell():
    frames = np.stack([blob(cy=10, cx=10), np.maximum(blob(cy=11, cx=11), blob(cy=36, cx=36)),
                       np.maximum(blob(cy=12, cx=12), blob(cy=37, cx=37))])
    tracks = track(frames, dx_km=1.0, cadence_s=300)
    assert sorted(t.scans for t in tracks) == [[0, 1, 2], [1, 2]]


def test_extrapolation_weights_favour_recent_scans():
    # a cell that stood still, then moved: unweighted and weighted fits differ, newest-first weights
    frames = np.stack([blob(cy=20, cx=c) for c in (20, 20, 20, 22, 24)])
    tr = track(frames, dx_km=1.0, cadence_s=300)[0]
    flat = extrapolate(tr, 300, weights=(1.0,) * 5)["velocity_kmh"][1]
    titan = extrapolate(tr, 300)["velocity_kmh"][1]
    recent = extrapolate(tr, 300, weights=(1.0, 1.0))["velocity_kmh"][1]
    assert recent == pytest.approx(24.0)  # 2 km per 5 min
    assert 0 < flat < recent and 0 < titan < recent


def test_measures_separate_moving_from_growing():
    obs = blob()
    moved = cell_measures(obs, blob(cy=27, cx=28), dx_km=1.0)[0]
    grown = cell_measures(obs, blob(sx=6, sy=6), dx_km=1.0)[0]
    assert moved["displacement_km"] == pytest.approx(5.0, abs=0.1) and moved["area_ratio"] == pytest.approx(1.0)
    assert grown["displacement_km"] < 0.5 and grown["area_ratio"] > 2
    assert moved["csi_shape"] > moved["csi"]
    assert grown["csi_shape"] == pytest.approx(grown["csi"])


def test_measures_accept_3d_fields_and_missing():
    obs = np.stack([blob(), blob() - 20])
    fc = np.stack([blob(cy=26), blob(cy=26) - 20])
    (m,) = cell_measures(obs, fc, dx_km=1.0)
    assert m["displacement_km"] == pytest.approx(2.0, abs=0.1)
    missing = np.ones(obs.shape, bool)
    assert cell_measures(obs, fc, dx_km=1.0, missing=missing) == []
    assert np.isnan(core_survival(obs, fc, dx_km=1.0, missing=missing))
    assert core_survival(obs, np.full_like(fc, -10), dx_km=1.0) == 0.0


@pytest.mark.parametrize("model, persistence, motion, words", [
    (14.5, 17.9, 14.5, "move with the observed storms (as close to them as optical flow's)"),  # the real-radar test split
    (14.5, 17.9, None, "stay about where they were (like persistence)"),  # no motion baseline: persistence's rule, as before
    (3.4, 16.0, None, "move with the observed storms"),
    (5.0, None, None, "move with the observed storms"),  # nothing to compare
    (3.6, 16.0, 5.5, "move with the observed storms (closer to them than optical flow's)"),
    (9.0, 16.0, 5.5, "lag behind the observed storms (farther from them than optical flow's, nearer than persistence's)"),
    (9.0, None, 5.5, "lag behind the observed storms (farther from them than optical flow's)"),
    (15.0, 16.0, 5.5, "stay about where they were (like persistence)"),
    (10.0, 10.5, 10.0, "sit as close to the observed storms as optical flow's and persistence's "
                       "(the storms moved too little to tell whether they move)"),
])
def test_move_or_grow_words_compares_with_the_motion_baseline_too(model, persistence, motion, words):
    assert move_or_grow_words(model, persistence, 1.61, motion) == (words, "grow")


def test_reference_words_name_the_distances_the_verdict_rests_on():
    assert reference_words(17.9, 14.5) == " (optical flow: 14.5 km, persistence: 17.9 km)"
    assert (reference_words(16.0), reference_words(None, 5.5), reference_words(None)) == (
        " (persistence: 16.0 km)", " (optical flow: 5.5 km)", "")
