"""Bad input to `nowcast prepare`: every broken scan is skipped, named and counted; hopeless input fails clearly."""
import json
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import torch
import yaml
from torch.utils.data import DataLoader

from _bad_scans import hang_case
from nowcast.data import RadarWindows, cli_main, load_cache, prepare
from nowcast.io import Grid, azimuthal_equidistant, write_grid_netcdf

T0 = np.datetime64("2024-06-01T12:00:00", "s")


def grid(n=8, nz=2, dx=2.0):
    return Grid(np.arange(n) * dx, np.arange(n) * dx, np.arange(1, nz + 1) * 1.0, azimuthal_equidistant(39.87, -104.76))


def write_event(folder, n, *, start=T0, g=None, seed=0):
    g, rng = g or grid(), np.random.default_rng(seed)
    paths = []
    for k in range(n):
        t = start + np.timedelta64(300 * k, "s")
        p = Path(folder) / f"{str(t)[11:].replace(':', '')}.nc"
        paths.append(write_grid_netcdf(p, rng.uniform(-10, 60, g.shape).astype(np.float32), None, t, g))
    return paths


@pytest.fixture
def broken_archive(tmp_path):
    "Three events of 30 scans; event 1 has a corrupt file, event 2 a scan on another grid, event 3 a duplicate time."
    raw = tmp_path / "raw"
    for k in range(3):
        write_event(raw / f"2024060{k + 1}", 30, start=T0 + np.timedelta64(86400 * k, "s"), seed=k)
    corrupt = raw / "20240601" / "121500.nc"
    corrupt.write_bytes(corrupt.read_bytes()[:200])  # truncated
    other = raw / "20240602" / "123000.nc"
    write_grid_netcdf(other, np.zeros((2, 8, 8), np.float32), None, T0 + np.timedelta64(86400 + 1800, "s"), grid(dx=1.0))
    dup = raw / "20240603" / "123001.nc"  # sorts after 123000.nc and carries its time
    write_grid_netcdf(dup, np.zeros((2, 8, 8), np.float32), None, T0 + np.timedelta64(2 * 86400 + 1800, "s"), grid())
    return raw, {"unreadable": corrupt, "pixel_size": other, "duplicate_time": dup}


def test_broken_scans_are_skipped_named_and_counted(broken_archive, tmp_path):
    raw, bad = broken_archive
    report = prepare(raw, tmp_path / "cache")
    assert report["scans_found"] == 91
    assert report["scans"] == 88
    assert report["skips"]["by_kind"] == {"unreadable": 1, "pixel_size": 1, "duplicate_time": 1}
    assert {k: [e["file"] for e in v] for k, v in report["skips"]["examples"].items()} == {k: [str(p)] for k, p in bad.items()}
    named = {item["kind"]: item for item in report["skips"]["files"]}
    for kind, path in bad.items():
        assert named[kind]["file"] == str(path)
        assert named[kind]["reason"].startswith(str(path))
    cache = load_cache(tmp_path / "cache")
    assert not {str(p) for p in bad.values()} & {str(p) for p in cache.source_paths}
    assert len(cache) == 88


def test_cli_writes_the_report(broken_archive, tmp_path, capsys):
    raw, bad = broken_archive
    params = {"data": {"raw_dir": str(raw), "event_gap_s": 1800},
              "prepare": {"cache_dir": str(tmp_path / "cache"), "split": {"train": 0.34, "val": 0.33, "test": 0.33}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert cli_main(["--params", str(tmp_path / "params.yaml"), "--report", str(tmp_path / "reports" / "prepare.json")]) == 0
    report = json.loads((tmp_path / "reports" / "prepare.json").read_text())
    assert report["events"] == 3 and report["skips"]["total"] == 3
    assert report["split_events"] == {"train": ["20240601"], "val": ["20240602"], "test": ["20240603"]}
    # a skipped scan leaves a 10-minute hole that no window spans
    assert report["windows"] == {"train": 12, "val": 9, "test": 16}
    out = capsys.readouterr().out
    assert "skipped 3 scans: " in out and "test" in out
    assert all(f"{k} 1" in out for k in bad)


def test_empty_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "raw").mkdir()
    with pytest.raises(ValueError, match=r"raw: no scans"):
        prepare(tmp_path / "raw", tmp_path / "cache")
    params = {"data": {"raw_dir": str(tmp_path / "raw")}, "prepare": {"cache_dir": str(tmp_path / "cache")}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert cli_main(["--params", str(tmp_path / "params.yaml"), "--report", str(tmp_path / "r.json")]) == 1
    assert "no scans" in capsys.readouterr().err
    from nowcast.cli import main  # the same through the `nowcast prepare` command
    assert main(["prepare", "--params", str(tmp_path / "params.yaml"), "--report", str(tmp_path / "r.json")]) == 1
    assert "raw: no scans" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "cache").exists()


def test_only_corrupt_files_is_a_clear_error(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.nc").write_bytes(b"not netcdf")
    with pytest.raises(ValueError, match="none of the 1 scans could be read"):
        prepare(tmp_path / "raw", tmp_path / "cache")


def test_failed_prepare_keeps_the_old_cache(tmp_path):
    raw = tmp_path / "raw"
    write_event(raw / "20240601", 20)
    prepare(raw, tmp_path / "cache")
    before = (tmp_path / "cache" / "index.json").read_text()
    with pytest.raises(ValueError, match="too little left to train"):
        prepare(raw, tmp_path / "cache", min_train_windows=1000)  # fails after every scan is cached
    assert (tmp_path / "cache" / "index.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "raw"]  # no half-built folder left behind


def test_windows_load_in_spawned_workers(tmp_path):
    "The memory maps are reopened in each worker, whatever the start method."
    raw = tmp_path / "raw"
    write_event(raw / "20240601", 16)
    prepare(raw, tmp_path / "cache", split={"train": 1.0, "val": 0.0, "test": 0.0})
    ds = RadarWindows(tmp_path / "cache", "train")
    assert len(ds) == 2
    spawned = list(DataLoader(ds, batch_size=2, num_workers=1, multiprocessing_context="spawn"))
    inline = list(DataLoader(ds, batch_size=2))
    for a, b in zip(spawned[0], inline[0]):
        assert torch.equal(a, b)


# --- bad scans among good ones: refused by kind, summarised once, never stopping prepare (issue 11) ------

@pytest.fixture(scope="module")
def hang_scan(tmp_path_factory) -> Path:
    "A scan that makes `netCDF4.Dataset` never return (see tests/_bad_scans.py)."
    d = tmp_path_factory.mktemp("hang")
    return hang_case(d / "20240507_194500.nc")


def _edit(path, change):
    with netCDF4.Dataset(path, "a") as ds:
        change(ds)


@pytest.fixture
def mixed_archive(tmp_path, hang_scan):
    "Two events of 20 good scans; five scans near the end of the first are damaged, one of each kind, and a sixth file hangs."
    import shutil
    raw = tmp_path / "raw"
    day1 = write_event(raw / "20240601", 20)
    write_event(raw / "20240602", 20, start=T0 + np.timedelta64(86400, "s"), seed=1)
    bad = {"timeout": raw / "20240601" / "zz_hang.nc", "unreadable": day1[13], "out_of_range": day1[14],
           "bad_time": day1[15], "bad_projection": day1[16], "grid_mismatch": day1[17]}
    shutil.copy(hang_scan, bad["timeout"])
    day1[13].write_bytes(day1[13].read_bytes()[:700])  # an interrupted copy
    _edit(day1[14], lambda ds: ds["DBZ"].delncattr("scale_factor"))  # counts read as dBZ: -1000..6000
    def zero_time(ds): ds["time"][:] = 0.0  # 1970-01-01
    _edit(day1[15], zero_time)
    _edit(day1[16], lambda ds: ds["DBZ"].delncattr("grid_mapping"))
    def reverse_x(ds): ds["x0"][:] = ds["x0"][::-1]  # the data stays: the scan would be mirrored
    _edit(day1[17], reverse_x)
    return raw, bad


def test_bad_scans_are_refused_by_kind_and_summarised_once(mixed_archive, tmp_path, caplog, capsys):
    import logging
    raw, bad = mixed_archive
    params = {"data": {"raw_dir": str(raw), "read_timeout_s": 3, "read_workers": 2},
              "prepare": {"cache_dir": str(tmp_path / "cache"), "n_in": 4, "n_out": 3,
                          "split": {"train": 0.5, "val": 0.5, "test": 0.0}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with caplog.at_level(logging.DEBUG, logger="nowcast.data"):
        assert cli_main(["--params", str(tmp_path / "params.yaml"), "--report", str(tmp_path / "prepare.json")]) == 0
    report = json.loads((tmp_path / "prepare.json").read_text())
    assert report["scans_found"] == 41 and report["scans"] == 35
    assert report["skips"]["by_kind"] == {k: 1 for k in bad}
    for kind, path in bad.items():
        (example,) = report["skips"]["examples"][kind]
        assert example["file"] == str(path) and example["reason"].startswith(str(path))
    assert "longer than 3 s" in report["skips"]["examples"]["timeout"][0]["reason"]
    assert report["params"]["reader"] == {"timeout_s": 3.0, "workers": 2, "dbz_range": [-40.0, 95.0], "max_extent_km": 2000.0}
    cached = {str(p) for p in load_cache(tmp_path / "cache").source_paths}
    assert len(cached) == 35 and not cached & {str(p) for p in bad.values()}
    # one warning line per kind, none per file; scans on another grid are said once per grid instead
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == len(bad) + 1, warnings
    for kind, path in bad.items():
        if kind == "grid_mismatch":
            assert warnings[0].startswith("skipped 1 scans on grid 2x8x8") and f"x stored decreasing (first: {path})" in warnings[0]
            continue
        (line,) = [w for w in warnings if w.startswith(f"prepare skipped {kind}: 1 scan ")]
        assert str(path) in line
    assert sum(r.levelno == logging.DEBUG and "skipped scan" in r.getMessage() for r in caplog.records) == len(bad)
    out = capsys.readouterr().out
    assert "skipped 6 scans: " in out and all(f"{k} 1" in out for k in bad)


def test_too_little_left_to_train_is_a_clear_error(mixed_archive, tmp_path):
    raw, bad = mixed_archive
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "index.json").write_text("{}")  # an older cache stays as it was
    with pytest.raises(ValueError) as err:
        prepare(raw, tmp_path / "cache", n_in=4, n_out=3, split={"train": 0.5, "val": 0.5, "test": 0.0},
                reader={"timeout_s": 3}, min_train_windows=100)
    msg = str(err.value)
    assert msg.startswith(f"{raw}: too little left to train") and "prepare.min_train_windows = 100" in msg
    assert all(f"\n  {kind}: 1 scan " in msg for kind in bad), msg  # every kind of refusal, one line each
    assert (tmp_path / "cache" / "index.json").read_text() == "{}"
    # the default asks for one training window, which the good scans give
    assert prepare(raw, tmp_path / "cache", n_in=4, n_out=3, split={"train": 0.5, "val": 0.5, "test": 0.0},
                   reader={"timeout_s": 3})["windows"]["train"] > 0


def test_a_radar_outage_is_a_gap_counted_by_nowcast_prepare(tmp_path, caplog):
    """A 10-minute outage (two scans missing everywhere) is not 'clear sky': `nowcast prepare` caches neither scan, no
    window spans the hole, prepare.json counts them under `outages`, and the log says so in one line."""
    import logging
    from nowcast.data import cli_main, load_cache
    g = grid()
    for k in range(24):
        t = T0 + np.timedelta64(300 * k, "s")
        miss = np.ones(g.shape, bool) if k in (10, 11) else np.zeros(g.shape, bool)
        write_grid_netcdf(tmp_path / "raw" / "radar" / f"{str(t)[11:].replace(':', '')}.nc",
                          np.full(g.shape, 30.0, np.float32), miss, t, g)
    params = {"data": {"raw_dir": str(tmp_path / "raw"), "max_missing_frac": 0.5},
              "prepare": {"cache_dir": str(tmp_path / "cache"), "n_in": 4, "n_out": 3, "split": {"train": 1.0}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with caplog.at_level(logging.WARNING, logger="nowcast.data"):
        assert cli_main(["--params", str(tmp_path / "params.yaml"), "--report", str(tmp_path / "prepare.json")]) == 0
    report = json.loads((tmp_path / "prepare.json").read_text())
    assert report["outages"] == 2 and report["skips"]["by_kind"] == {"outage": 2} and report["scans"] == 22
    [line] = [r.getMessage() for r in caplog.records if "outage" in r.getMessage()]
    assert line.startswith("prepare skipped outage: 2 scans")
    cache = load_cache(tmp_path / "cache")
    spans = [np.diff(cache.times[cache.window_indices(s)]).astype(int) for s in cache.windows["train"]]
    assert len(spans) == (10 - 7 + 1) + (12 - 7 + 1) and all(d.max() == 300 for d in spans)
