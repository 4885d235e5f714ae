"""Bad input to `nowcast prepare`: every broken scan is skipped, named and counted; hopeless input fails clearly."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch.utils.data import DataLoader

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
    return raw, {"unreadable": corrupt, "grid_mismatch": other, "duplicate_time": dup}


def test_broken_scans_are_skipped_named_and_counted(broken_archive, tmp_path):
    raw, bad = broken_archive
    report = prepare(raw, tmp_path / "cache")
    assert report["scans_found"] == 91
    assert report["scans"] == 88
    assert report["skips"]["by_kind"] == {"unreadable": 1, "grid_mismatch": 1, "duplicate_time": 1}
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
    assert "skipped 3 scans" in out and "test" in out


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
    with pytest.raises(ValueError, match=r"121000\.nc|120000\.nc.*not divisible"):
        prepare(raw, tmp_path / "cache", pool=3)  # 8x8 is not divisible by 3: names the file
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
