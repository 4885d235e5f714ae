"""Every projection TITAN understands, through the writer and the reader (issue 17, point 2).

For each `grid_mapping_name` of `nowcast.grids.PROJECTIONS` a small grid is placed over a real place
in that projection (its CF attributes from a PROJ string through `cf_grid_mapping`, as the importer of
real composites makes them), written with `nowcast.io.write_grid_netcdf`, read back with `read_scan`,
and compared: the same values (within the packing), mask, grid, projection attributes and pixel
positions. Each written file also passes the CF compliance checker (CF-1.6, strict).
"""
import json
from pathlib import Path

import netCDF4
import numpy as np
import pyproj
import pytest

from nowcast.grids import PROJECTIONS, Grid, cf_grid_mapping, crs_of, lonlat
from nowcast.io import ScanError, read_scan, write_grid_netcdf

# name -> (PROJ string, (lon, lat) of the grid's centre): one real radar domain per projection
CASES = {
    "azimuthal_equidistant": ("+proj=aeqd +lat_0=39.87 +lon_0=-104.76 +R=6371000", (-104.76, 39.87)),
    "lambert_conformal_conic": ("+proj=lcc +lat_1=49.83333333333334 +lat_2=51.16666666666666 +lat_0=50.797815 "
                                "+lon_0=4.359215833333333 +x_0=649328 +y_0=665262 +ellps=GRS80 +units=m", (4.9, 50.6)),
    "polar_stereographic": ("+proj=stere +lat_0=90 +lon_0=0.0 +lat_ts=60.0 +a=6378.137 +b=6356.752 +x_0=0 +y_0=0", (5.2, 52.1)),
    "stereographic": ("+proj=stere +lat_0=52.15616 +lon_0=5.38763 +k=0.9999079 +x_0=155000 +y_0=463000 +ellps=bessel", (5.2, 52.1)),
    "lambert_azimuthal_equal_area": ("+proj=laea +lat_0=55.0 +lon_0=10.0 +x_0=1950000.0 +y_0=-2100000.0 +units=m +ellps=WGS84",
                                     (12.0, 48.0)),
    "albers_conical_equal_area": ("+proj=aea +lon_0=144.752 +lat_0=-37.852 +lat_1=-18.000 +lat_2=-36.000", (144.75, -37.85)),
    "mercator": ("+proj=merc +lon_0=100 +lat_ts=10 +R=6371000", (101.0, 3.1)),
    "transverse_mercator": ("+proj=tmerc +lat_0=0 +lon_0=9 +k=0.9996 +x_0=500000 +ellps=WGS84", (9.5, 47.5)),
    "latitude_longitude": ("+proj=longlat +ellps=IAU76", (-97.5, 35.2)),
    "vertical_perspective": ("+proj=nsper +lat_0=0 +lon_0=-75 +h=35786000 +R=6371000", (-80.0, 26.0)),
}
NX, NY, NZ = 7, 6, 2


def test_every_projection_has_a_case():
    assert sorted(CASES) == sorted(PROJECTIONS)


def case_grid(name: str) -> Grid:
    "A small grid (2 km pixels, or 0.02 degrees) centred on the case's place, in the case's projection."
    proj4, (lon, lat) = CASES[name]
    proj = cf_grid_mapping(proj4)
    assert proj["grid_mapping_name"] == name
    if name == "latitude_longitude":
        x, y, step = lon, lat, 0.02
    else:
        crs = crs_of(proj)
        x, y = (v / 1000.0 for v in pyproj.Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True).transform(lon, lat))
        step = 2.0
    return Grid(x + (np.arange(NX) - NX // 2) * step, y + (np.arange(NY) - NY // 2) * step, [0.5, 2.0], proj)


def scan_values(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(17)
    return rng.uniform(-30, 70, grid.shape).astype(np.float32), rng.random(grid.shape) < 0.1


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("projections")
    out = {}
    for name in CASES:
        grid = case_grid(name)
        dbz, missing = scan_values(grid)
        out[name] = (write_grid_netcdf(folder / f"{name}.nc", dbz, missing, "2024-05-01T18:00:00", grid,
                                         global_attrs={"title": f"test scan on a {name} grid", "history": "tests/test_grids.py"}),
                       grid, dbz, missing)
    return out


def same_attrs(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k] == b[k] if isinstance(a[k], str) else np.allclose(np.atleast_1d(a[k]), np.atleast_1d(b[k]), rtol=1e-12, atol=0)
        for k in a)


@pytest.mark.parametrize("name", sorted(CASES))
def test_round_trip_through_writer_and_reader(written, name):
    path, grid, dbz, missing = written[name]
    s = read_scan(path)
    assert (s.missing == missing).all()
    assert np.abs(s.dbz - dbz)[~missing].max() <= 0.005 + 1e-5  # packing, float32
    assert s.grid.matches(grid) and same_attrs(s.grid.projection, grid.projection), (s.grid.projection, grid.projection)
    assert s.grid.is_latlon == (name == "latitude_longitude")
    lon, lat = lonlat(s.grid)
    lon0, lat0 = lonlat(grid)
    assert np.abs(lon - lon0).max() < 1e-5 and np.abs(lat - lat0).max() < 1e-5  # float32 coordinates: well under a metre
    assert abs(lon0[NY // 2, NX // 2] - CASES[name][1][0]) < 1e-6 and abs(lat0[NY // 2, NX // 2] - CASES[name][1][1]) < 1e-6


@pytest.mark.parametrize("name", sorted(CASES))
def test_written_file_carries_what_lrose_reads(written, name):
    path, grid, *_ = written[name]
    with netCDF4.Dataset(path) as ds:
        gm = ds[ds["DBZ"].grid_mapping]
        assert gm.grid_mapping_name == name
        for key in PROJECTIONS[name]:
            assert key in gm.ncattrs(), key
        x = ds["x0"]
        if name == "latitude_longitude":
            assert (x.standard_name, x.units, ds["y0"].standard_name, ds["y0"].units) == (
                "longitude", "degrees_east", "latitude", "degrees_north")
            assert "false_easting" not in gm.ncattrs()
        else:
            assert (x.standard_name, x.units) == ("projection_x_coordinate", "km")
            assert np.isclose(gm.false_easting, grid.projection["false_easting"])
        on_ellipsoid = "semi_major_axis" in gm.ncattrs()
        assert ("comment" in gm.ncattrs()) == on_ellipsoid and ("earth_radius" in gm.ncattrs()) != on_ellipsoid


def test_polar_stereographic_keeps_knmi_s_frame(written):
    "KNMI's grid: y about -4400 km from its origin (the pole); read as is, not refused as out of reach."
    s = read_scan(written["polar_stereographic"][0])
    assert -4100 < s.grid.y_km.mean() < -3900 and s.grid.projection["latitude_of_projection_origin"] == 90.0
    assert "ellipsoid" in s.grid.projection["comment"]


def test_projection_lacking_an_attribute_is_refused(written, tmp_path):
    path = written["transverse_mercator"][0]
    broken = tmp_path / "tm.nc"
    broken.write_bytes(path.read_bytes())
    with netCDF4.Dataset(broken, "a") as ds:
        ds["grid_mapping_0"].delncattr("scale_factor_at_central_meridian")
    with pytest.raises(ScanError, match="transverse_mercator lacks scale_factor_at_central_meridian") as info:
        read_scan(broken)
    assert info.value.kind == "bad_projection"


def test_degree_grid_wider_than_a_radar_domain_is_refused(tmp_path):
    grid = Grid(-130 + 0.04 * np.arange(1750), 20 + 0.04 * np.arange(875), [0.0], cf_grid_mapping("+proj=longlat +ellps=IAU76"))
    p = write_grid_netcdf(tmp_path / "mrms.nc", np.zeros(grid.shape, np.float32), None, "2019-06-10T00:00:00", grid)
    with pytest.raises(ScanError, match="x coordinates reach 36.. km from the grid's centre") as info:
        read_scan(p)
    assert info.value.kind == "bad_coordinates"
    assert read_scan(p, max_extent_km=4000.0).grid.matches(grid)  # the CONUS composite, with a continent-wide limit


@pytest.mark.parametrize("name", sorted(CASES))
def test_passes_the_cf_compliance_checker(written, name, tmp_path):
    from compliance_checker.runner import CheckSuite, ComplianceChecker
    CheckSuite.load_all_available_checkers()
    report = tmp_path / "cf.json"
    passed, errored = ComplianceChecker.run_checker(str(written[name][0]), ["cf:1.6"], 0, "strict",
                                                    output_filename=str(report), output_format="json")
    results = json.loads(report.read_text())["cf:1.6"]
    msgs = [m for level in ("high_priorities", "medium_priorities", "low_priorities")
            for r in results[level] if r["value"][0] < r["value"][1] for m in r["msgs"]]
    # compliance-checker 6.1.0's table of CF-1.6 grid mappings (cf/appendix_f.py) lists mercator's required attributes
    # as ("longitude_of_projection_origin") -- a string, not a tuple -- so it asks for each of its letters as an
    # attribute. Those messages, and only those, are the checker's own bug; the file holds the attribute itself.
    checker_bug = {f"{c} is a required attribute for grid mapping mercator" for c in "longitude_of_projection_origin"}
    assert not errored
    assert [m for m in msgs if m not in checker_bug] == []
    assert passed or (name == "mercator" and set(msgs) <= checker_bug)


# --- a forecast carries its input's grid mapping -------------------------------------------------------

FC_PARAMS = {"data": {"field": "DBZ"}, "prepare": {"pool": 2, "pool_space": "dbz", "dbz_min": -10.0, "dbz_max": 70.0,
                                                  "dbz_step": 0.5, "n_in": 4, "n_out": 2, "max_gap_s": 450}}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    "A tiny checkpoint following the training contract (random weights)."
    import torch
    from nowcast.models import get_model
    torch.manual_seed(0)
    kwargs = dict(n_levels=2, n_in=4, n_out=2, hidden=[4, 4], groups=1)
    model = get_model("ConvLSTM3D_Enhanced", **kwargs)
    path = tmp_path_factory.mktemp("ckpt") / "phase3_best.pt"
    torch.save({"model": model.state_dict(), "model_config": {"name": "ConvLSTM3D_Enhanced", "kwargs": kwargs},
                "params": FC_PARAMS, "phase": "phase3", "epoch": 1, "step": 1, "best_val": 0.0}, path)
    return path


def input_scans(folder, grid: Grid) -> list:
    "Four scans, 5 minutes apart, of a moving blob on `grid`, in LROSE's day-folder layout."
    yy, xx = np.mgrid[:grid.shape[1], :grid.shape[2]]
    paths = []
    for k in range(4):
        t = np.datetime64("2010-08-26T00:00:00", "s") + np.timedelta64(300 * k, "s")
        blob = 45.0 * np.exp(-(((xx - 3 - k) / 2.0) ** 2 + ((yy - 8) / 2.0) ** 2))
        dbz = np.repeat(np.where(blob > 5, blob, -10.0)[None], grid.shape[0], 0).astype(np.float32)
        paths.append(write_grid_netcdf(folder / "20100826" / f"00{5 * k:02d}00.nc", dbz, None, t, grid))
    return paths


@pytest.mark.parametrize("name", ["polar_stereographic", "latitude_longitude"])
@pytest.mark.parametrize("upsample", [True, False])
def test_forecast_carries_its_input_grid_mapping(checkpoint, tmp_path, name, upsample):
    from nowcast.predict import predict
    small = case_grid(name)
    step = 0.01 if name == "latitude_longitude" else 1.0
    grid = Grid(small.x_km[0] + np.arange(16) * step, small.y_km[0] + np.arange(16) * step, small.z_km, small.projection)
    scans = input_scans(tmp_path / "raw", grid)
    files = predict(checkpoint, scans[0].parent, tmp_path / "fc", upsample=upsample, device="cpu")
    assert len(files) == 2
    with netCDF4.Dataset(scans[-1]) as src, netCDF4.Dataset(files[-1]) as fc:
        a, b = (ds[ds["DBZ"].grid_mapping] for ds in (src, fc))
        assert same_attrs({k: a.getncattr(k) for k in a.ncattrs()}, {k: b.getncattr(k) for k in b.ncattrs()})
        assert (fc["x0"].units, fc["y0"].units) == (src["x0"].units, src["y0"].units)
    back = read_scan(files[-1])
    assert back.grid.projection["grid_mapping_name"] == name
    assert back.grid.matches(grid if upsample else grid.pooled(2))


# --- the five real sources, as their pysteps importers describe them -------------------------------------

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real-radar"  # ../shared/real-radar from the repo root
SOURCES = {  # name -> (file, importer, keyword arguments, (lon, lat) the grid's centre pixel lies near)
    "KNMI": ("radar/KNMI/2010/08/RAD_NL25_RAP_5min_201008260000.h5", "import_knmi_hdf5", {}, (4.97, 52.51)),
    "RMI": ("radar/rmi/radqpe/20210704/20210704155000.rad.best.comp.rate.qpe.hdf", "import_odim_hdf5", {"qty": "RATE"},
            (4.38, 50.67)),
    "BoM": ("radar/bom/prcp-cscn/2/2018/06/16/2_20180616_100000.prcp-cscn.nc", "import_bom_rf3", {}, (144.75, -37.85)),
    "MRMS": ("mrms/2019/06/10/PrecipRate_00.00_20190610-000000.grib2", "import_mrms_grib", {}, (-94.98, 37.50)),
    "OPERA": ("radar/OPERA/20180824/T_PAAH21_C_EUOC_20180824180000.hdf", "import_opera_hdf5", {}, (9.25, 54.11)),
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_real_source_grid_round_trip(name, tmp_path):
    "A real composite's pysteps metadata -> Grid -> file -> read_scan: same grid, and pixels where pysteps puts them."
    from pysteps import io as pio
    from nowcast.grids import grid_from_pysteps, rows_south_first
    rel, importer, kw, (lon_c, lat_c) = SOURCES[name]
    assert (REAL / rel).is_file(), f"real radar sample missing: {REAL / rel} (see ../shared/real-radar/README.md)"
    rain, _, meta = getattr(pio, importer)(str(REAL / rel), **kw)
    grid = grid_from_pysteps(meta, rain.shape)
    rain = rows_south_first(np.asarray(rain, float), meta)
    missing = ~np.isfinite(rain)[None]
    dbz = np.where(missing, np.nan, np.clip(10 * np.log10(200 * np.maximum(rain, 0.01) ** 1.6), -10, 70)).astype(np.float32)
    p = write_grid_netcdf(tmp_path / f"{name}.nc", dbz, missing, "2019-06-10T00:00:00", grid)
    s = read_scan(p, max_extent_km=4000.0)  # MRMS's CONUS grid reaches 3700 km from its centre
    assert s.grid.matches(grid) and same_attrs(s.grid.projection, grid.projection)
    assert (s.missing == missing).all() and np.abs(s.dbz - dbz)[~missing].max() <= 0.005 + 1e-5  # packing, float32
    lon, lat = lonlat(s.grid)
    j, i = grid.shape[1] // 2, grid.shape[2] // 2
    assert abs(lon[j, i] - lon_c) < 0.01 and abs(lat[j, i] - lat_c) < 0.01
    src = pyproj.CRS(meta["projection"])  # the same pixel through pysteps' own PROJ string, in its own units
    unit = 1.0 if grid.is_latlon or meta["cartesian_unit"] == "km" else 1000.0
    lon0, lat0 = pyproj.Transformer.from_crs(src, src.geodetic_crs, always_xy=True).transform(
        grid.x_km[i] * unit, grid.y_km[j] * unit)
    assert abs(lon[j, i] - lon0) < 1e-5 and abs(lat[j, i] - lat0) < 1e-5  # float32 coordinates in the file: about a metre
