"""A user's own archive: symlinked event folders, LROSE's day folders, two radars' grids, plain-CF files,
too few events for every split; finding scans by time as LROSE does; the radar's position and the scan's
time span carried through `read_scan`."""
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import yaml

from nowcast.data import cli_main, find_scans, group_events, load_cache, prepare
from nowcast.io import Grid, azimuthal_equidistant, first_before, latest, read_scan, write_grid_netcdf

T0 = np.datetime64("2024-06-01T12:00:00", "s")
ROOT = Path(__file__).resolve().parents[1]


def grid(n=8, nz=2, dx=2.0, lat=39.87):
    return Grid(np.arange(n) * dx, np.arange(n) * dx, np.arange(1, nz + 1) * 1.0, azimuthal_equidistant(lat, -104.76))


def stamp(t) -> str:
    return str(np.datetime64(t, "s")).replace("-", "").replace(":", "")  # yyyymmddThhmmss


def times(start, n, step_s=300):
    return [np.datetime64(start, "s") + np.timedelta64(step_s * k, "s") for k in range(n)]


def write_lrose(folder, ts, g=None, seed=0):
    "One scan per time as `<folder>/yyyymmdd/hhmmss.nc` (LROSE's layout)."
    g, rng = g or grid(), np.random.default_rng(seed)
    return [write_grid_netcdf(Path(folder) / stamp(t)[:8] / f"{stamp(t)[9:]}.nc",
                              rng.uniform(-10, 60, g.shape).astype(np.float32), None, t, g) for t in ts]


def write_flat(folder, ts, g=None, seed=0):
    "One scan per time as `<folder>/yyyymmdd_hhmmss.nc`."
    g, rng = g or grid(), np.random.default_rng(seed)
    return [write_grid_netcdf(Path(folder) / f"{stamp(t).replace('T', '_')}.nc",
                              rng.uniform(-10, 60, g.shape).astype(np.float32), None, t, g) for t in ts]


def write_plain_cf(path, t, n=8, nz=2, dx_m=2000.0, seed=0):
    "A scan as a user might bring it: plain CF names, metres, float data with a missing_value, 'minutes since' time."
    rng = np.random.default_rng(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    epoch_min = float((np.datetime64(t, "s") - np.datetime64("2024-01-01T00:00:00", "s")) / np.timedelta64(60, "s"))
    with netCDF4.Dataset(path, "w") as ds:
        for name, k in (("time", 1), ("z", nz), ("y", n), ("x", n)):
            ds.createDimension(name, k)
        tv = ds.createVariable("time", "f8", ("time",)); tv.units = "minutes since 2024-01-01 00:00:00"; tv[:] = epoch_min
        zv = ds.createVariable("z", "f4", ("z",)); zv.units = "m"; zv.positive = "up"; zv[:] = np.arange(1, nz + 1) * 1000.0
        yv = ds.createVariable("y", "f4", ("y",)); yv.standard_name = "projection_y_coordinate"; yv.units = "m"
        yv[:] = np.arange(n) * dx_m
        xv = ds.createVariable("x", "f4", ("x",)); xv.standard_name = "projection_x_coordinate"; xv.units = "m"
        xv[:] = np.arange(n) * dx_m
        crs = ds.createVariable("crs", "i4", ()); crs.setncatts(azimuthal_equidistant(39.87, -104.76))
        v = ds.createVariable("DBZ", "f4", ("time", "z", "y", "x")); v.missing_value = np.float32(-999.0); v.grid_mapping = "crs"
        data = rng.uniform(-10, 60, (1, nz, n, n)).astype(np.float32)
        data[0, 0, 0, 0] = -999.0
        v[:] = data
    return path


# --- symbolic links ------------------------------------------------------------------------------


def test_symlinked_event_folders_are_followed(tmp_path):
    store, raw = tmp_path / "store", tmp_path / "raw"
    write_flat(store / "storm_a", times(T0, 16))
    write_flat(store / "storm_b", times(T0 + np.timedelta64(86400, "s"), 16), seed=1)
    raw.mkdir()
    for name in ("storm_a", "storm_b"):
        (raw / name).symlink_to(store / name, target_is_directory=True)
    (store / "storm_a" / "back_up").symlink_to(raw, target_is_directory=True)  # a loop must not hang nor count twice
    scans = find_scans(raw)
    assert len(scans) == 32 and all(p.is_relative_to(raw) for p in scans)
    report = prepare(raw, tmp_path / "cache", split={"train": 0.5, "val": 0.5, "test": 0.0})
    assert (report["scans"], report["events"]) == (32, 2)
    assert load_cache(tmp_path / "cache").event_names == ["storm_a", "storm_b"]


def test_a_symlinked_raw_dir_and_a_second_link_to_one_folder(tmp_path, caplog):
    write_flat(tmp_path / "store" / "storm_a", times(T0, 4))
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a").symlink_to(tmp_path / "store" / "storm_a", target_is_directory=True)
    (tmp_path / "raw" / "b").symlink_to(tmp_path / "store" / "storm_a", target_is_directory=True)
    (tmp_path / "link_to_raw").symlink_to(tmp_path / "raw", target_is_directory=True)
    with caplog.at_level(logging.WARNING, logger="nowcast.data"):
        scans = find_scans(tmp_path / "link_to_raw")
    assert [p.relative_to(tmp_path / "link_to_raw").parent.name for p in scans] == ["a"] * 4  # read once
    assert any("raw/b: the same folder as" in r.getMessage() for r in caplog.records)


# --- LROSE's layout ------------------------------------------------------------------------------


def test_day_folders_inside_event_folders_are_one_event_across_midnight(tmp_path):
    raw = tmp_path / "raw"
    write_lrose(raw / "storm_a", times("2024-06-01T23:00:00", 20))  # 23:00 .. 00:35, crosses midnight UTC
    write_lrose(raw / "storm_b", times("2024-06-04T12:00:00", 16), seed=1)
    assert sorted(p.name for p in (raw / "storm_a").iterdir()) == ["20240601", "20240602"]
    events = group_events(find_scans(raw), 1800, root=raw)
    assert [(e.name, len(e)) for e in events] == [("storm_a", 20), ("storm_b", 16)]
    assert np.all(np.diff(events[0].times).astype(int) == 300)
    report = prepare(raw, tmp_path / "cache", split={"train": 0.5, "val": 0.5, "test": 0.0})
    assert report["split_events"]["train"] == ["storm_a"] and report["windows"]["train"] == 20 - 15 + 1


def test_flat_day_folders_are_split_into_events_by_the_gap(tmp_path):
    raw = tmp_path / "lrose"  # <dir>/yyyymmdd/hhmmss.nc, as LROSE writes: no event folders
    write_lrose(raw, times("2024-06-01T23:30:00", 16))            # 23:30 .. 00:45: one event over midnight
    write_lrose(raw, times("2024-06-02T03:00:00", 16), seed=1)    # 2 h 15 later: a new event, same day folder
    write_lrose(raw, times("2024-06-03T18:00:00", 16), seed=2)
    events = group_events(find_scans(raw), 1800, root=raw)
    assert [(e.name, len(e), str(e.start)) for e in events] == [
        ("20240601", 16, "2024-06-01T23:30:00"), ("20240602", 16, "2024-06-02T03:00:00"),
        ("20240603", 16, "2024-06-03T18:00:00")]
    # a shorter event_gap_s cuts the same archive where its gaps are longer
    assert len(group_events(find_scans(raw), 120, root=raw)) == 48
    report = prepare(raw, tmp_path / "cache")
    assert report["events"] == 3 and report["empty_splits"] == [] and report["windows"] == {"train": 2, "val": 2, "test": 2}
    assert report["split_events"] == {"train": ["20240601"], "val": ["20240602"], "test": ["20240603"]}


def test_first_before_and_latest_find_scans_by_time_as_lrose_does(tmp_path):
    paths = write_lrose(tmp_path, times("2024-06-01T23:50:00", 4))  # 23:50, 23:55, 00:00, 00:05
    other = write_grid_netcdf(tmp_path / "20240602" / "20240602_001000.nc", np.zeros((2, 8, 8), np.float32), None,
                              "2024-06-02T00:10:00", grid())  # LROSE's other spelling
    (tmp_path / "20240602" / ".20240602_001500.nc").write_bytes(b"")  # hidden: an unfinished write
    (tmp_path / "20240603").mkdir()  # an empty day folder later on
    assert first_before(tmp_path, "2024-06-02T00:04:59") == paths[2]
    assert first_before(tmp_path, "2024-06-02T00:05:00") == paths[3]  # at the time itself
    assert first_before(tmp_path, "2024-06-01T23:59:00") == paths[1]  # the day before
    assert first_before(tmp_path, "2024-06-04T00:00:00") == other
    assert first_before(tmp_path, "2024-06-04T00:00:00", margin_s=600) is None
    assert first_before(tmp_path, "2024-06-02T00:12:00", margin_s=600) == other
    assert first_before(tmp_path, "2024-06-01T23:49:00") is None
    assert latest(tmp_path) == other
    assert latest(tmp_path / "nothing_here") is None


# --- two grids -----------------------------------------------------------------------------------


@pytest.fixture
def two_grid_archive(tmp_path):
    "Two events on a 2 km grid (40 scans) before three on another radar's 1 km grid (48 scans)."
    raw = tmp_path / "raw"
    for k in range(2):
        write_flat(raw / f"radar_a_{k}", times(T0 + np.timedelta64(86400 * k, "s"), 20), seed=k)
    for k in range(3):
        write_flat(raw / f"radar_b_{k}", times(T0 + np.timedelta64(86400 * (k + 5), "s"), 16),
                   g=grid(dx=1.0, lat=40.5), seed=10 + k)
    return raw


def test_two_grids_of_two_pixel_sizes_keep_the_models_and_say_so_once_per_grid(two_grid_archive, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="nowcast.data"):
        report = prepare(two_grid_archive, tmp_path / "cache", split={"train": 0.34, "val": 0.33, "test": 0.33})
    grid_lines = [r.getMessage() for r in caplog.records if " grid " in r.getMessage()]
    assert len(grid_lines) == 2, grid_lines  # one per grid, not one per skipped file
    assert grid_lines[0].startswith("radar raw: kept grid 2x8x8 (z, y, x), spacing 1 x 1 km, origin 40.5, -104.76")
    assert grid_lines[0].endswith(": 48 scans")
    assert grid_lines[1].startswith("skipped 40 scans on grid 2x8x8 (z, y, x), spacing 2 x 2 km, origin 39.87, -104.76")
    assert grid_lines[1].endswith("pixel 2 x 2, the model's 1 x 1")   # the model's pixel: the grid most scans share
    assert (report["scans"], report["events"]) == (48, 3)
    assert report["skips"]["by_kind"] == {"pixel_size": 40}
    assert all(f["reason"].startswith(f["file"]) for f in report["skips"]["files"])
    kept, skipped = report["grids"]["kept"], report["grids"]["skipped"]
    assert (kept["shape"], kept["dx_km"], kept["origin"], kept["scans"]) == ([2, 8, 8], 1.0, [40.5, -104.76], 48)
    assert [(s["shape"], s["dx_km"], s["origin"], s["scans"]) for s in skipped] == [([2, 8, 8], 2.0, [39.87, -104.76], 40)]
    assert report["warnings"][0] == grid_lines[1]
    cache = load_cache(tmp_path / "cache")
    assert cache.raw_grid.dx_km == 1.0 and cache.event_names == ["radar_b_0", "radar_b_1", "radar_b_2"]


def test_two_radars_of_one_pixel_size_are_both_kept_and_split_each_in_time(tmp_path):
    """Training on several radars is the normal case: two grids of the same pixel, each one long record, each cut in
    time into train / val / test; windows never cross radars and no split shares a time of the same radar."""
    raw = tmp_path / "raw"
    write_flat(raw / "north" / "20240601", times(T0, 40), g=grid(dx=1.0, lat=40.5), seed=1)
    write_flat(raw / "south" / "20240601", times(T0, 40), g=grid(dx=1.0, lat=38.0), seed=2)
    report = prepare(raw, tmp_path / "cache", n_in=4, n_out=3, split={"train": 0.5, "val": 0.25, "test": 0.25})
    assert [(r["name"], r["scans_kept"]) for r in report["radars"]] == [("north", 40), ("south", 40)]
    cache = load_cache(tmp_path / "cache")
    for r in (0, 1):
        spans = {k: [cache.times[cache.window_indices(s)] for s in w if cache.scan_radar[s] == r] for k, w in cache.windows.items()}
        assert all(spans[k] for k in spans), {k: len(v) for k, v in spans.items()}
        assert max(t[-1] for t in spans["train"]) < min(t[0] for t in spans["val"])
        assert max(t[-1] for t in spans["val"]) < min(t[0] for t in spans["test"])
    assert all(len(set(cache.scan_radar[cache.window_indices(s)])) == 1 for w in cache.windows.values() for s in w)


def test_one_grid_is_said_once_without_a_warning(tmp_path, caplog):
    write_flat(tmp_path / "raw" / "storm", times(T0, 16))
    with caplog.at_level(logging.INFO, logger="nowcast.data"):
        report = prepare(tmp_path / "raw", tmp_path / "cache", split={"train": 1.0, "val": 0.0, "test": 0.0})
    grid_records = [r for r in caplog.records if "grid" in r.getMessage()]
    assert [r.levelno for r in grid_records] == [logging.INFO]
    assert report["grids"]["skipped"] == [] and report["warnings"] == []


# --- empty splits --------------------------------------------------------------------------------


def test_an_empty_split_is_a_warning_with_the_counts(tmp_path, capsys, caplog):
    raw = tmp_path / "raw"
    for k in range(2):
        write_flat(raw / f"storm_{k}", times(T0 + np.timedelta64(86400 * k, "s"), 16), seed=k)
    params = {"data": {"raw_dir": str(raw)}, "prepare": {"cache_dir": str(tmp_path / "cache"),
                                                         "split": {"train": 0.6, "val": 0.2, "test": 0.2}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with caplog.at_level(logging.WARNING, logger="nowcast.data"):
        assert cli_main(["--params", str(tmp_path / "params.yaml"), "--report", str(tmp_path / "prepare.json")]) == 0
    report = json.loads((tmp_path / "prepare.json").read_text())
    assert report["empty_splits"] == ["test"]
    [warning] = report["warnings"]
    assert warning.startswith("split 'test' has no events: 2 events with windows split 0.6/0.2/0.2 gives train 1, val 1, test 0;")
    assert "from 3 events" in warning and "prepare.split.test to 0" in warning
    assert [r.getMessage() for r in caplog.records if "has no events" in r.getMessage()] == [warning]


# --- a user's folder, end to end -----------------------------------------------------------------


def test_prepare_on_a_users_folder_from_the_command_line(tmp_path):
    """Plain-CF files in LROSE's flat layout (day folders, no event folders), linked one day folder at a time
    into the user's folder, with a day of another radar: `nowcast prepare` with data.raw_dir pointing there
    works, splits the events by gap (one crosses midnight) and says once per grid what it kept and skipped."""
    store = tmp_path / "elsewhere"
    for k, start in enumerate(("2024-06-01T23:40:00", "2024-06-03T12:00:00", "2024-06-05T12:00:00")):
        for j, t in enumerate(times(start, 16)):
            write_plain_cf(store / stamp(t)[:8] / f"{stamp(t)[9:]}.nc", t, seed=100 * k + j)
    for j, t in enumerate(times("2024-06-07T12:00:00", 5)):  # another radar: 1 km spacing
        write_plain_cf(store / stamp(t)[:8] / f"{stamp(t)[9:]}.nc", t, dx_m=1000.0, seed=j)
    user = tmp_path / "my_archive"
    user.mkdir()
    for day in sorted(store.iterdir()):
        (user / day.name).symlink_to(day, target_is_directory=True)
    assert sorted(p.name for p in user.iterdir()) == ["20240601", "20240602", "20240603", "20240605", "20240607"]
    params = {"data": {"raw_dir": str(user), "field": "DBZ", "event_gap_s": 1800},
              "prepare": {"cache_dir": str(tmp_path / "cache"), "split": {"train": 0.6, "val": 0.2, "test": 0.2}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    res = subprocess.run([sys.executable, "-c", "import sys; from nowcast.cli import main; sys.exit(main())",
                          "prepare", "--params", "params.yaml", "--report", "reports/prepare.json"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "reports" / "prepare.json").read_text())
    assert (report["scans_found"], report["scans"], report["events"]) == (53, 48, 3)
    assert report["split_events"] == {"train": ["20240601"], "val": ["20240603"], "test": ["20240605"]}
    assert report["skips"]["by_kind"] == {"pixel_size": 5} and report["empty_splits"] == []
    grid_lines = [line for line in res.stderr.splitlines() if " grid " in line]  # the terminal: once per grid
    assert len(grid_lines) == 2, res.stderr
    assert "kept grid 2x8x8 (z, y, x), spacing 2 x 2 km" in grid_lines[0] and ": 48 scans" in grid_lines[0]
    assert "skipped 5 scans on grid 2x8x8 (z, y, x), spacing 1 x 1 km" in grid_lines[1]
    cache = load_cache(tmp_path / "cache")
    first = read_scan(cache.source_paths[0])
    assert first.time == np.datetime64("2024-06-01T23:40:00") and first.missing[0, 0, 0]
    assert np.bincount(cache.scan_event).tolist() == [16, 16, 16]  # the first event runs on past midnight


# --- the radar's position and the scan's time span -----------------------------------------------


def test_radar_position_and_time_bounds_read_back_from_a_scan(tmp_path):
    t = np.datetime64("2024-06-01T12:05:00", "s")
    p = write_grid_netcdf(tmp_path / "20240601" / "120500.nc", np.zeros((2, 8, 8), np.float32), None, t, grid(),
                          sensor=(39.7866, -104.5458, 1.71), time_bounds=(t - np.timedelta64(280, "s"), t))
    s = read_scan(p)
    assert s.sensor == pytest.approx((39.7866, -104.5458, 1.71))
    assert s.time_bounds == (np.datetime64("2024-06-01T12:00:20"), t)
    with netCDF4.Dataset(p) as ds:  # where LROSE's reader looks (lrose-core Ncf2MdvTrans)
        header = ds["mdv_master_header"]
        assert header.ndim == 0
        assert (header.mdv_sensor_lat, header.mdv_sensor_lon, header.mdv_sensor_alt) == pytest.approx((39.7866, -104.5458, 1.71))
        assert ds["time"].bounds == "time_bounds" and ds["time_bounds"].shape == (1, 2)
        assert ds["time_bounds"].ncattrs() == []  # a CF boundary variable takes its units and calendar from time
        assert list(ds["time_bounds"][0]) == [float((t - np.timedelta64(280, "s")).astype(np.int64)), float(t.astype(np.int64))]
    # a file without them (an old call, or a user's file) reads as None; so does LROSE's unset position 0, 0
    plain = read_scan(write_grid_netcdf(tmp_path / "plain.nc", np.zeros((2, 8, 8), np.float32), None, t, grid()))
    assert (plain.sensor, plain.time_bounds) == (None, None)
    unset = read_scan(write_grid_netcdf(tmp_path / "unset.nc", np.zeros((2, 8, 8), np.float32), None, t, grid(),
                                        sensor=(0.0, 0.0, 0.0)))
    assert unset.sensor is None


def test_a_scan_with_time_bounds_passes_the_cf_checker(tmp_path):
    from compliance_checker.runner import CheckSuite, ComplianceChecker
    t = np.datetime64("2024-06-01T12:05:00", "s")
    p = write_grid_netcdf(tmp_path / "scan.nc", np.zeros((2, 8, 8), np.float32), None, t, grid(),
                          sensor=(39.87, -104.76, 1.6), time_bounds=(t - np.timedelta64(300, "s"), t),
                          global_attrs={"title": "test scan", "history": "written by a test"})
    CheckSuite.load_all_available_checkers()
    out = tmp_path / "cf.json"
    passed, errored = ComplianceChecker.run_checker(str(p), ["cf:1.6"], 0, "strict", output_filename=str(out),
                                                    output_format="json")
    results = json.loads(out.read_text())["cf:1.6"]
    failures = [(r["name"], r["msgs"]) for level in ("high_priorities", "medium_priorities", "low_priorities")
                for r in results[level] if r["value"][0] < r["value"][1]]
    assert not errored and passed and failures == [], failures


def test_the_embedded_archive_is_in_lroses_layout_and_found_by_time(tmp_path):
    """The synth stage writes `<event>/yyyymmdd/hhmmss.nc`: LROSE's find-by-time works on every event folder, and each
    scan carries the radar's position and its volume's time bounds."""
    from nowcast.synthetic import make_archive
    paths = make_archive(tmp_path, seed=7, nx=16, ny=16, nz=2, dx_km=4.0, z_top_km=10.0, cadence_s=300,
                         scans_per_event=4, events={"supercell": 1}, origin_lat=39.87, origin_lon=-104.76,
                         start="2024-05-01T23:50:00")     # this event crosses midnight UTC
    event = tmp_path / "2024-05-01_supercell_00"
    assert [p.relative_to(event).as_posix() for p in paths] == [
        "20240501/235000.nc", "20240501/235500.nc", "20240502/000000.nc", "20240502/000500.nc"]
    assert first_before(event, "2024-05-02T00:04:00") == paths[2]
    assert first_before(event, "2024-05-01T23:59:59") == paths[1]
    assert latest(event) == paths[3]
    scan = read_scan(first_before(event, "2024-05-02T00:00:00"))
    assert scan.sensor == (39.87, -104.76, 1.675)
    assert scan.time_bounds == (np.datetime64("2024-05-01T23:55:30"), np.datetime64("2024-05-02T00:00:00"))
