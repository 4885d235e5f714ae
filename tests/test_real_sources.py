"""The records added to ../shared/real-radar after pysteps' sample (KNMI's reflectivity composite, BoM's Brisbane
radar, DPC's Italian mosaic), a few files of each imported through the params as the archive stage does: grid,
units, values, missing mask, times, and BoM's 0.5 km pixels averaged to the model's 1 km."""
import json
from pathlib import Path

import h5py
import netCDF4
import numpy as np
import pytest
import yaml

from nowcast import cli
from nowcast.radar_import import SOURCES, pysteps_io, rain_to_dbz, target_path
from test_radar_import import REAL, _written, sample_folder

NEW = {"knmi_dbz": 3, "bom_brisbane": 2, "dpc": 2}  # files per record, consecutive, mid-record
PROJECTION = {"knmi_dbz": "polar_stereographic", "bom_brisbane": "albers_conical_equal_area", "dpc": "azimuthal_equidistant"}
CADENCE_S = {"knmi_dbz": 300.0, "bom_brisbane": 600.0, "dpc": 300.0}
NO_RAIN = -20.0


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    "The picked files linked into a source folder and imported by `nowcast import --params` (prepare.pixel_km 1 km)."
    src, out, rpt, picked = sample_folder(tmp_path_factory, NEW)
    params = src.parent / "params.yaml"
    params.write_text(yaml.safe_dump({"data": {"field": "DBZ"}, "prepare": {"pixel_km": 1.0, "pool_space": "dbz"},
                                      "radar_import": {"source_dir": str(src), "out_dir": str(out), "sources": list(NEW),
                                                       "workers": 2}}))
    argv = ["import", "--params", str(params), "--report", str(rpt)]
    assert cli.main(argv) == 0
    return {"out": out, "picked": picked, "report": json.loads(rpt.read_text()), "argv": argv, "rpt": rpt}


def test_every_file_is_imported_on_its_grid_at_its_cadence(imported):
    rep = imported["report"]["sources"]
    for name, n in NEW.items():
        r = rep[name]
        assert (r["files_found"], r["imported"], r["refused"]["total"]) == (n, n, 0), name
        assert (r["projection"], r["cadence_s"], r["expected_cadence_s"]) == (PROJECTION[name], CADENCE_S[name],
                                                                               CADENCE_S[name]), name
        assert r["first_time"] == str(imported["picked"][name][0][0]) and r["last_time"] == str(imported["picked"][name][-1][0])
    assert (rep["knmi_dbz"]["grid_shape"], rep["knmi_dbz"]["pixel"], rep["knmi_dbz"]["pixel_units"]) == ([765, 700], [1.0, 1.0], "km")
    assert (rep["bom_brisbane"]["grid_shape"], rep["bom_brisbane"]["pixel"]) == ([256, 256], [1.0, 1.0])  # 0.5 km averaged
    assert (rep["dpc"]["grid_shape"], rep["dpc"]["pixel"], rep["dpc"]["pixel_units"]) == ([1451, 1454], [1.0, 1.0], "km")


def test_knmi_reflectivity_is_written_as_knmi_gives_it(imported):
    "DBZH is dBZ already: no Z-R; the count 0 (-32 dBZ) is no echo; outside the coverage stays missing."
    io_, _ = pysteps_io()
    s = SOURCES["knmi_dbz"]
    for t, f in imported["picked"]["knmi_dbz"]:
        raw, _, meta = io_.get_method("knmi_hdf5", "importer")(str(f), qty="DBZH")
        assert meta["unit"] == "dBZ"
        dbz, attrs, gm, tb, tt, y = _written(target_path(imported["out"], "knmi_dbz", t))
        north_first = dbz[::-1]
        np.testing.assert_array_equal(np.isnan(north_first), np.isnan(raw))
        assert 0.1 < np.isnan(raw).mean() < 0.3
        echo = raw >= meta["threshold"]
        np.testing.assert_allclose(north_first[echo], raw[echo], atol=0.006)  # as the file has it
        assert set(np.unique(north_first[(raw < meta["threshold"])])) == {NO_RAIN}
        assert -32 <= np.nanmin(north_first) and np.nanmax(north_first) < 60
        assert tt == (t - np.datetime64("1970-01-01T00:00:00")).astype(int) and tb is None  # a reflectivity: no interval
        assert attrs["conversion"] == "none (the source gives dBZ)" and "no Z-R" in attrs["comment"]
        assert attrs["institution"] == s.institution and "CC BY 4.0" in attrs["license"]


def test_bom_brisbane_is_averaged_to_the_models_1_km(imported):
    "Each 1 km pixel is the mean dBZ of the 2 x 2 Marshall-Palmer pixels of 0.5 km it covers."
    io_, _ = pysteps_io()
    for t, f in imported["picked"]["bom_brisbane"]:
        raw, _, meta = io_.get_method("bom_rf3", "importer")(str(f))
        src_dbz, src_missing, _ = rain_to_dbz(f, raw, meta)
        assert meta["xpixelsize"] == 500.0 and src_dbz.shape == (512, 512)
        dbz, attrs, gm, tb, tt, y = _written(target_path(imported["out"], "bom_brisbane", t))
        assert dbz.shape == (256, 256) and np.diff(y) == pytest.approx(1.0)
        blocks = src_dbz[::-1].reshape(256, 2, 256, 2)  # south first, as written
        seen = ~src_missing[::-1].reshape(256, 2, 256, 2).any(axis=(1, 3))
        np.testing.assert_allclose(dbz[seen], blocks.mean(axis=(1, 3))[seen], atol=0.006)
        assert y[0] == pytest.approx((meta["y1"] + meta["ypixelsize"] / 2) / 1000, abs=1e-3)  # block centres
        assert np.nanmax(dbz) > 35 and (dbz == NO_RAIN).mean() > 0.5  # the hailstorm day: cores and dry air
        assert tb == [tt - 600, tt] and attrs["pixel_km"] == 1.0 and "Averaged from 0.5 km" in attrs["comment"]


def test_dpc_mosaic_from_the_readme_grid_onto_1_km(imported):
    "-9999 and NaN are missing, -9998 no echo, the rest dBZ as stored; each 1 km pixel holds the lat/lon pixel it lies in."
    import pyproj
    for t, f in imported["picked"]["dpc"]:
        with h5py.File(f) as h:
            raw = h["radar_data"][...].astype(np.float64)
        missing = (raw == -9999) | np.isnan(raw)
        assert 0.45 < missing.mean() < 0.6
        dbz, attrs, gm, tb, tt, y = _written(target_path(imported["out"], "dpc", t))
        with netCDF4.Dataset(target_path(imported["out"], "dpc", t)) as ds:
            x = ds["x0"][:].data
        assert gm["grid_mapping_name"] == "azimuthal_equidistant" and gm["earth_radius"] == 6371000.0 and tb is None  # TITAN's
        assert np.diff(x) == pytest.approx(1.0) and np.diff(y) == pytest.approx(1.0)
        crs = pyproj.CRS.from_cf({k: v for k, v in gm.items() if not k.startswith("_")})
        to_lonlat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        rng = np.random.default_rng(0)
        iy, ix = rng.integers(0, len(y), 20000), rng.integers(0, len(x), 20000)
        lon, lat = to_lonlat.transform(x[ix] * 1000.0, y[iy] * 1000.0)
        fc = (lon - 4.523392) / ((20.476608 - 4.523392) / 1200)   # the README's grid: 1200 columns, 1400 rows, first row north
        fr = (47.848989 - lat) / ((47.848989 - 35.065086) / 1400)
        col, row = np.floor(fc).astype(int), np.floor(fr).astype(int)
        clear = (np.abs(fc - np.round(fc)) > 0.01) & (np.abs(fr - np.round(fr)) > 0.01)  # not on a pixel's edge (rounding)
        iy, ix, lon, col, row = iy[clear], ix[clear], lon[clear], col[clear], row[clear]
        inside = (col >= 0) & (col < 1200) & (row >= 0) & (row < 1400)
        got = dbz[iy, ix]
        assert np.isnan(got[~inside]).all()
        src = raw[row[inside], col[inside]]
        src_missing = missing[row[inside], col[inside]]
        g = got[inside]
        same = np.isnan(g) == src_missing   # a point metres from a pixel edge may fall either side (PROJ round trip)
        assert same.mean() > 0.999, same.mean()
        echo = same & ~src_missing & (src >= 10)
        assert (np.abs(g[echo] - src[echo]) < 0.006).mean() > 0.999
        assert (g[same & (src == -9998)] == NO_RAIN).mean() > 0.999
        assert (dbz[~np.isnan(dbz)] >= 35).any()
        assert "1 km pixels of +proj=aeqd" in attrs["comment"]
        assert "Protezione Civile" in attrs["institution"] and attrs["source_file"] == f.name


def test_a_dpc_file_of_another_shape_is_refused_and_counted(tmp_path_factory):
    """A 10 x 10 `radar_data` is not DPC's 1400 x 1200 grid: `nowcast import` refuses it (bad_field, both shapes named)
    instead of spreading it over the grid's corners as 1451 x 1454 pixels of 1 km, and counts it as it counts a
    truncated copy and a text file (unreadable) and an all-infinite array (non_finite); the real file beside them is imported."""
    src, out, rpt, picked = sample_folder(tmp_path_factory, {"dpc": 1})
    t, real = picked["dpc"][0]
    day = (src / real.relative_to(REAL)).parent
    names = [day / ("VMI_" + str(t + np.timedelta64(5 * k, "m")).translate(str.maketrans("", "", "-T:")) + ".h5")
             for k in range(1, 5)]   # the next four file names of the record
    with h5py.File(names[0], "w") as h: h["radar_data"] = np.full((10, 10), 30.0, np.float32)
    names[1].write_bytes(real.read_bytes()[: real.stat().st_size // 3])   # an interrupted copy
    names[2].write_text("not a radar file\n")
    with h5py.File(names[3], "w") as h: h["radar_data"] = np.full((1400, 1200), np.inf, np.float32)
    assert cli.main(["import", "--source-dir", str(src), "--out", str(out), "--sources", "dpc", "--workers", "2",
                     "--report", str(rpt)]) == 0
    r = json.loads(rpt.read_text())["sources"]["dpc"]
    assert (r["files_found"], r["imported"], r["refused"]["total"]) == (5, 1, 4)
    assert r["refused"]["by_kind"] == {"unreadable": 2, "bad_field": 1, "non_finite": 1}
    reason = {Path(f["file"]).name: (f["kind"], f["reason"]) for f in r["refused"]["files"]}
    assert reason[names[0].name][0] == "bad_field"
    assert "'radar_data' array is 10 x 10, not the 1400 x 1200 pixels of the source's grid" in reason[names[0].name][1]
    assert [reason[n.name][0] for n in names[1:]] == ["unreadable", "unreadable", "non_finite"]
    assert r["grid_shape"] == [1451, 1454] and r["first_time"] == r["last_time"] == str(t)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.nc")) == [target_path(out, "dpc", t).relative_to(out).as_posix()]


def test_rerun_keeps_and_a_new_pixel_reimports(imported, tmp_path):
    assert cli.main(imported["argv"]) == 0
    t = json.loads(imported["rpt"].read_text())["totals"]
    assert (t["imported"], t["already_imported"]) == (0, sum(NEW.values()))
    params = yaml.safe_load(open(imported["argv"][2]))
    params["prepare"]["pixel_km"] = None  # every source at its own pixel: BoM's files are written again, at 0.5 km
    params["radar_import"]["sources"] = ["bom_brisbane"]
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(params))
    assert cli.main(["import", "--params", str(p), "--report", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())["sources"]["bom_brisbane"]
    assert (r["imported"], r["replaced"], r["grid_shape"], r["pixel"]) == (2, 2, [512, 512], [0.5, 0.5])


CADENCE_SAMPLE = {"knmi_dbz": 22, "bom_brisbane": 11}  # 22 scans at 5 min, 11 at 10 min: one window of 4 + 7 each at 10 min


@pytest.fixture(scope="module")
def cadence_archive(tmp_path_factory):
    "A 5-minute and a 10-minute record imported with params-real.yaml's own import and prepare settings."
    from pathlib import Path
    src, out, rpt, picked = sample_folder(tmp_path_factory, CADENCE_SAMPLE)
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params-real.yaml").read_text())
    params["radar_import"].update(source_dir=str(src), out_dir=str(out), sources=list(CADENCE_SAMPLE))
    params["data"]["raw_dir"] = str(out)
    params["prepare"].update(split={"train": 1.0}, cache_dir=str(out.parent / "cache"))
    p = out.parent / "params-real.yaml"
    p.write_text(yaml.safe_dump(params))
    assert cli.main(["import", "--params", str(p), "--report", str(rpt)]) == 0
    return {"params": params, "path": p}


def _radars(params: dict, path, **prepare) -> dict:
    "prepare with `prepare` overrides; {radar: its line of the report}."
    params = {**params, "prepare": {**params["prepare"], **prepare}}
    path.write_text(yaml.safe_dump(params))
    assert cli.main(["prepare", "--params", str(path), "--report", str(path.parent / "prepare.json")]) == 0
    index = json.loads((path.parent / "cache" / "index.json").read_text())
    return {r["name"]: r for r in index["report"]["radars"]}


def test_the_real_model_steps_5_minutes_and_skips_brisbanes_10(cadence_archive):
    "The cadence choice of the README: params-real.yaml's model forecasts 5-minute steps; the 10-minute day is counted, not mixed in."
    assert cadence_archive["params"]["prepare"]["time_step_s"] == 300
    radars = _radars(cadence_archive["params"], cadence_archive["path"])
    assert radars["knmi_dbz"]["windows"]["train"] == 22 - 11 + 1 and radars["knmi_dbz"]["every"] == [1]
    assert radars["bom_brisbane"]["windows"]["train"] == 0 and radars["bom_brisbane"]["skipped"] == {"cadence": 11}


def test_a_10_minute_model_takes_both(cadence_archive):
    "The alternative the README weighs: at a 10-minute step the Brisbane day is used and KNMI is taken every other scan."
    radars = _radars(cadence_archive["params"], cadence_archive["path"], time_step_s=600, max_gap_s=900)
    assert radars["bom_brisbane"]["windows"]["train"] == 1 and radars["bom_brisbane"]["every"] == [1]
    assert radars["knmi_dbz"]["windows"]["train"] == 22 - 21 + 1 and radars["knmi_dbz"]["every"] == [2]  # every other scan
