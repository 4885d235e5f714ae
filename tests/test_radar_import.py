"""`nowcast import` on a sample of the real composites (../shared/real-radar, linked in place, never copied into
the repository): every source's values, missing vs no rain, north-up rows, projection, time bounds; damaged files
refused by kind and counted; an idempotent rerun; the archive read back by nowcast.data and nowcast.io."""
import json
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from nowcast import cli
from nowcast.radar_import import SOURCES, find_source_files, pysteps_io, target_path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "real-radar"
SAMPLE = {"knmi": 2, "rmi": 2, "bom": 2, "mrms": 1, "opera": 1}  # files per source (MRMS: 2 s each to read)
PROJECTION = {"knmi": "polar_stereographic", "rmi": "lambert_conformal_conic", "bom": "albers_conical_equal_area",
              "mrms": "latitude_longitude", "opera": "lambert_azimuthal_equal_area"}
NO_RAIN = -20.0


def _link(src: Path, dst: Path):
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.symlink_to(src.resolve())


def sample_folder(tmp_path_factory, counts: dict) -> tuple:
    "(src, out, report, picked): `counts[source]` consecutive files from the middle of each record linked into `src`."
    root = tmp_path_factory.mktemp("radar_import")
    src, picked = root / "src", {}
    for name, n in counts.items():
        files = find_source_files(REAL, SOURCES[name])
        picked[name] = files[len(files) // 2:len(files) // 2 + n]  # mid-event: rain in every source
        for _, f in picked[name]:
            _link(f, src / f.relative_to(REAL))
    return src, root / "out", root / "report.json", picked


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    "A source folder of a few real files per source (symlinks) and three damaged ones, imported through the CLI."
    src, out, rpt, picked = sample_folder(tmp_path_factory, SAMPLE)
    damaged = {"rmi": find_source_files(REAL, SOURCES["rmi"])[0][1], "mrms": find_source_files(REAL, SOURCES["mrms"])[0][1]}
    for name, f in damaged.items():  # interrupted copies
        (src / f.relative_to(REAL)).write_bytes(f.read_bytes()[: f.stat().st_size // 3])
    bom_day = (src / picked["bom"][0][1].relative_to(REAL)).parent
    (bom_day / "2_20180616_000000.prcp-cscn.nc").write_text("not a radar file\n")  # a name that fits, content that is not
    argv = ["import", "--source-dir", str(src), "--out", str(out), "--workers", "2", "--report", str(rpt)]
    assert cli.main(argv) == 0
    return {"src": src, "out": out, "argv": argv, "picked": picked, "report": json.loads(rpt.read_text()), "rpt": rpt}


def _written(path: Path):
    "dBZ [Y, X] (NaN at _FillValue), global attributes, grid mapping, time bounds, y of a written scan (netCDF4 alone)."
    with netCDF4.Dataset(path) as ds:
        v = ds["DBZ"]
        assert v.dimensions == ("time", "z0", "y0", "x0") and ds["z0"][:].tolist() == [0.0]
        gm = ds[v.grid_mapping]
        tb = ds["time_bounds"][0].tolist() if "time_bounds" in ds.variables else None
        return (np.ma.filled(v[0, 0].astype(np.float64), np.nan), {k: ds.getncattr(k) for k in ds.ncattrs()},
                {k: gm.getncattr(k) for k in gm.ncattrs()}, tb, float(ds["time"][0]), ds["y0"][:].data)


def test_report_counts_every_file_by_source_and_refusals_by_kind(imported):
    rep = imported["report"]
    for name, n in SAMPLE.items():
        r = rep["sources"][name]
        assert (r["imported"], r["already_imported"], r["projection"]) == (n, 0, PROJECTION[name]), name
    assert rep["sources"]["rmi"]["refused"]["by_kind"] == {"unreadable": 1}
    assert rep["sources"]["mrms"]["refused"]["by_kind"] == {"unreadable": 1}
    assert rep["sources"]["bom"]["refused"]["by_kind"] == {"unreadable": 1}
    assert rep["totals"] == {"files_found": sum(SAMPLE.values()) + 3, "imported": sum(SAMPLE.values()), "already_imported": 0,
                             "replaced": 0, "refused": 3}
    assert (rep["sources"]["bom"]["grid_shape"], rep["sources"]["bom"]["pixel"]) == ([512, 512], [0.5, 0.5])
    assert rep["sources"]["knmi"]["cadence_s"] == 300.0 and rep["sources"]["bom"]["cadence_s"] == 360.0


@pytest.mark.parametrize("name", list(SAMPLE))
def test_values_are_marshall_palmer_missing_and_no_rain_apart_north_up(imported, name):
    io_, _ = pysteps_io()
    s = SOURCES[name]
    for t, f in imported["picked"][name]:
        raw, _, meta = io_.get_method(s.importer, "importer")(str(f), **s.importer_kwargs)
        raw = np.ma.filled(np.ma.asarray(raw, np.float64), np.nan)
        per_h = 60.0 / meta["accutime"] if meta["unit"] == "mm" else 1.0
        rate = raw * per_h
        dbz, attrs, gm, tb, tt, y = _written(target_path(imported["out"], name, t))
        north_first = dbz[::-1]
        np.testing.assert_array_equal(np.isnan(north_first), np.isnan(raw))  # missing where pysteps has no data, only there
        rainy = rate >= meta["threshold"] * per_h
        dry = ~rainy & ~np.isnan(raw)
        assert rainy.sum() > 50 and dry.sum() > 50, (name, rainy.sum(), dry.sum())
        np.testing.assert_allclose(north_first[rainy], 10 * np.log10(200 * rate[rainy] ** 1.6), atol=0.006)
        assert set(np.unique(north_first[dry])) == {NO_RAIN}
        assert np.all(np.diff(y) > 0)
        y_unit = 1e-3 if meta["cartesian_unit"] == "m" else 1.0
        corners = np.isclose(meta["y2"] - meta["y1"], len(y) * meta["ypixelsize"])  # y1/y2: outer edges (else centres, as BoM)
        north = meta["y2"] - (meta["ypixelsize"] / 2 if corners else 0.0)
        assert y[-1] == pytest.approx(north * y_unit, abs=1e-3)  # pysteps' first row is the northernmost
        assert gm["grid_mapping_name"] == PROJECTION[name]
        assert (attrs["institution"], attrs["source"], attrs["zr_a"], attrs["zr_b"]) == (s.institution, s.network, 200.0, 1.6)
        assert f.name in attrs["history"] and "pysteps.utils.conversion.to_reflectivity" in attrs["conversion"]
        epoch = (t - np.datetime64("1970-01-01T00:00:00")).astype(int)
        assert tt == epoch
        assert tb == ([epoch - meta["accutime"] * 60, epoch] if meta["unit"] == "mm" else None), name


def test_missing_and_no_rain_both_occur_in_the_composites(imported):
    "The sample really tests the distinction: the composites with a coverage edge have both."
    for name in ("knmi", "rmi", "mrms", "opera"):
        dbz = _written(target_path(imported["out"], name, imported["picked"][name][0][0]))[0]
        assert np.isnan(dbz).mean() > 0.1 and (dbz == NO_RAIN).mean() > 0.1, name


def test_rerun_writes_nothing_and_refuses_the_same_files(imported):
    scans = sorted(imported["out"].rglob("*.nc"))
    before = [(p, p.stat().st_mtime_ns) for p in scans]
    assert cli.main(imported["argv"]) == 0
    rep = json.loads(imported["rpt"].read_text())
    assert (rep["totals"]["imported"], rep["totals"]["already_imported"], rep["totals"]["refused"]) == (0, sum(SAMPLE.values()), 3)
    assert [(p, p.stat().st_mtime_ns) for p in sorted(imported["out"].rglob("*.nc"))] == before
    assert not [p for p in imported["out"].rglob("*") if p.name.startswith(".")]


def test_a_damaged_target_is_imported_again(imported, tmp_path):
    name, (t, _) = "bom", imported["picked"]["bom"][0]
    target = target_path(imported["out"], name, t)
    good = target.read_bytes()
    target.write_bytes(good[: len(good) // 2])
    rpt = tmp_path / "r.json"
    assert cli.main(["import", "--source-dir", str(imported["src"]), "--out", str(imported["out"]), "--sources", "bom",
                     "--report", str(rpt)]) == 0
    r = json.loads(rpt.read_text())["sources"]["bom"]
    assert (r["imported"], r["replaced"], r["already_imported"]) == (1, 1, SAMPLE["bom"] - 1)
    assert target.read_bytes() == good  # the same inputs give the same bytes


def test_the_archive_reads_as_events_and_scans(imported):
    "nowcast.data makes one event per source folder; nowcast.io reads every scan back: same dBZ, mask, grid and time."
    from nowcast.data import find_scans, group_events
    from nowcast.io import read_scan
    events = group_events(find_scans(imported["out"]), 1800, root=imported["out"], workers=1)
    assert sorted((e.name, len(e.paths)) for e in events) == sorted(SAMPLE.items())
    for name in SAMPLE:
        t = imported["picked"][name][0][0]
        path = target_path(imported["out"], name, t)
        scan, (dbz, _, gm, tb, _, y) = read_scan(path, max_extent_km=4000.0), _written(path)  # CONUS, Europe: 3700, 2200 km
        assert scan.dbz.shape == (1,) + dbz.shape and scan.time == t and scan.sensor is None
        np.testing.assert_array_equal(scan.missing[0], np.isnan(dbz))
        np.testing.assert_allclose(scan.dbz[0][~scan.missing[0]], dbz[~np.isnan(dbz)], atol=1e-4)
        np.testing.assert_allclose(scan.grid.y_km, y, atol=1e-4)
        assert scan.grid.projection["grid_mapping_name"] == PROJECTION[name]
        assert scan.grid.xy_units == ("degrees" if name == "mrms" else "km")
        assert (scan.time_bounds is not None) == (tb is not None)


def test_params_section_and_bad_names(tmp_path, imported):
    params = tmp_path / "params.yaml"
    params.write_text(f"data: {{field: reflectivity}}\nradar_import: {{source_dir: {imported['src']}, out_dir: {tmp_path / 'a'}, "
                      "sources: [opera], workers: 1, zr_a: 300.0, zr_b: 1.5}\n")
    rpt = tmp_path / "r.json"
    assert cli.main(["import", "--params", str(params), "--report", str(rpt)]) == 0
    t = imported["picked"]["opera"][0][0]
    with netCDF4.Dataset(target_path(tmp_path / "a", "opera", t)) as ds:
        assert "reflectivity" in ds.variables and (ds.zr_a, ds.zr_b) == (300.0, 1.5)
    assert cli.main(["import", "--params", str(params), "--sources", "nowhere", "--report", str(rpt)]) == 1


def test_every_source_passes_the_cf_compliance_checker(imported, tmp_path):
    from compliance_checker.runner import CheckSuite, ComplianceChecker
    CheckSuite.load_all_available_checkers()
    for name in SAMPLE:
        path, report = target_path(imported["out"], name, imported["picked"][name][0][0]), tmp_path / f"{name}.json"
        passed, errored = ComplianceChecker.run_checker(str(path), ["cf:1.6"], 0, "strict", output_filename=str(report),
                                                        output_format="json")
        results = json.loads(report.read_text())["cf:1.6"]
        msgs = [m for level in ("high_priorities", "medium_priorities", "low_priorities")
                for r in results[level] if r["value"][0] < r["value"][1] for m in r["msgs"]]
        assert passed and not errored and msgs == [], (name, msgs)
