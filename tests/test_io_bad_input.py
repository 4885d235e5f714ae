"""Bad input to `nowcast.io.read_scan`: every problem is a `ScanError` that names the file and the problem.

Each test writes a small file into `tmp_path`; together they cover what users' archives really bring,
and the impossible data a fuzz campaign found accepted before (issue 11): every such file is refused with
a `ScanError` of the right `kind`.
"""
import pickle
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from nowcast.io import (NO_ECHO_DBZ, SCAN_ERROR_KINDS, Grid, ScanError, atomic_write, azimuthal_equidistant, read_scan,
                        read_scan_time, write_grid_netcdf)

GRID = Grid(np.arange(6) * 2.0 - 5, np.arange(5) * 2.0 - 4, [0.5, 2.0], azimuthal_equidistant(39.87, -104.76))


def good_scan(path: Path, **kw) -> Path:
    dbz = np.linspace(-10, 60, int(np.prod(GRID.shape)), dtype=np.float32).reshape(GRID.shape)
    return write_grid_netcdf(path, dbz, None, "2024-05-01T18:00:00", GRID, **kw)


T2024 = 1714586400.0  # 2024-05-01T18:00:00Z in seconds since 1970
CRS = azimuthal_equidistant(39.87, -104.76)


def make_nc(path: Path, dims: dict, coords: dict, field=("DBZ", "f4", None), *, time=T2024,
            time_units="seconds since 1970-01-01T00:00:00Z", fmt="NETCDF4", data=None, crs=CRS):
    """A hand-made file: `coords` maps a coordinate name to (values, attrs); `field` is (name, type, dims);
    `crs` the attributes of its grid-mapping variable (None: no grid_mapping)."""
    with netCDF4.Dataset(path, "w", format=fmt) as ds:
        for n, k in dims.items():
            ds.createDimension(n, k)
        if time is not None:
            t = ds.createVariable("time", "f8", ("time",) if "time" in dims else ())
            t.units = time_units
            t[...] = time
        for n, (values, attrs) in coords.items():
            v = ds.createVariable(n, "f4", (n,))
            v.setncatts(attrs)
            v[:] = values
        name, typ, fdims = field
        fdims = fdims or tuple(dims)
        v = ds.createVariable(name, typ, fdims)
        if crs is not None:
            ds.createVariable("crs", "i4", ()).setncatts(crs)
            v.grid_mapping = "crs"
        shape = tuple(dims[d] for d in fdims)
        v[...] = np.full(shape, 10.0) if data is None else data
    return path


X = {"standard_name": "projection_x_coordinate", "units": "km"}
Y = {"standard_name": "projection_y_coordinate", "units": "km"}
Z = {"standard_name": "altitude", "units": "km", "positive": "up"}


def cf_coords(nx=4, ny=3, nz=2):
    return {"z": (np.arange(nz) + 0.5, Z), "y": (np.arange(ny) * 1.0, Y), "x": (np.arange(nx) * 1.0, X)}


def expect_error(path, *words, field="DBZ", kind=None):
    with pytest.raises(ScanError) as info:
        read_scan(path, field=field)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg
    for w in words:
        assert w in msg, msg
    assert info.value.kind in SCAN_ERROR_KINDS, info.value.kind
    if kind is not None:
        assert info.value.kind == kind, (info.value.kind, msg)
    return msg


def test_no_such_file(tmp_path):
    expect_error(tmp_path / "nope.nc", "no such file")


def test_not_netcdf(tmp_path):
    p = tmp_path / "20240501_180000.nc"
    p.write_text("this is a text file, not NetCDF\n")
    expect_error(p, "not NetCDF", kind="unreadable")
    with pytest.raises(ScanError, match="not NetCDF"):
        read_scan_time(p)


def test_empty_file(tmp_path):
    p = tmp_path / "20240501_180000.nc"
    p.write_bytes(b"")
    expect_error(p, "not NetCDF")


@pytest.mark.parametrize("frac", [0.3, 0.9, 0.99])
def test_truncated_netcdf4(tmp_path, frac):
    full = good_scan(tmp_path / "full.nc").read_bytes()
    p = tmp_path / "cut.nc"
    p.write_bytes(full[: int(len(full) * frac)])
    expect_error(p, "unreadable")


@pytest.mark.parametrize("frac", [0.5, 0.99])
def test_truncated_classic_netcdf(tmp_path, frac):
    # netCDF-C opens a truncated classic file and reads zeros: the reader must notice from the header
    full = make_nc(tmp_path / "full.nc", {"time": 1, "z": 2, "y": 3, "x": 4}, cf_coords(),
                   fmt="NETCDF3_64BIT_OFFSET")
    assert read_scan(full).dbz.min() == 10.0
    p = tmp_path / "cut.nc"
    p.write_bytes(full.read_bytes()[: int(full.stat().st_size * frac)])
    expect_error(p, "truncated", kind="truncated")


def test_classic_with_record_dimension_reads(tmp_path):
    p = tmp_path / "rec.nc"
    with netCDF4.Dataset(p, "w", format="NETCDF3_CLASSIC") as ds:
        ds.createDimension("time", None)
        for n, k in (("z", 2), ("y", 3), ("x", 4)):
            ds.createDimension(n, k)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "seconds since 2024-05-01"
        t[0] = 60.0
        for n, (vals, attrs) in cf_coords().items():
            v = ds.createVariable(n, "f4", (n,))
            v.setncatts(attrs)
            v[:] = vals
        ds.createVariable("crs", "i4", ()).setncatts(CRS)
        v = ds.createVariable("DBZ", "i2", ("time", "z", "y", "x"))
        v.grid_mapping = "crs"
        v[0] = 7
    s = read_scan(p)
    assert s.time == np.datetime64("2024-05-01T00:01:00")
    assert (s.dbz == 7).all()


def test_field_missing_lists_variables(tmp_path):
    p = good_scan(tmp_path / "20240501_180000.nc")
    msg = expect_error(p, "'reflectivity' missing", "DBZ", "x0", "time", field="reflectivity", kind="bad_field")
    assert "variables present" in msg


def test_xy_axes_missing(tmp_path):
    # the field's last two dimensions are neither named x/y nor have coordinates saying so
    p = make_nc(tmp_path / "a.nc", {"time": 1, "z": 2, "rows": 3, "cols": 4}, {"z": (np.arange(2) + 0.5, Z)})
    expect_error(p, "rows", "not a recognised")


def test_xy_dimension_without_coordinate(tmp_path):
    p = make_nc(tmp_path / "a.nc", {"time": 1, "z": 2, "y": 3, "x": 4}, {"z": (np.arange(2) + 0.5, Z), "y": (np.arange(3.0), Y)})
    expect_error(p, "'x'", "no coordinate variable")


def test_xy_not_both_present(tmp_path):
    p = make_nc(tmp_path / "a.nc", {"time": 1, "z": 2, "x": 4}, {"z": (np.arange(2) + 0.5, Z), "x": (np.arange(4.0), X)})
    expect_error(p, "x/y axes missing")


def test_irregular_spacing(tmp_path):
    coords = cf_coords()
    coords["x"] = (np.array([0.0, 1.0, 2.0, 4.0]), X)
    p = make_nc(tmp_path / "a.nc", {"time": 1, "z": 2, "y": 3, "x": 4}, coords)
    expect_error(p, "x axis", "irregular spacing", kind="bad_coordinates")


def test_non_monotonic_axis(tmp_path):
    coords = cf_coords()
    coords["y"] = (np.array([0.0, 2.0, 1.0]), Y)
    p = make_nc(tmp_path / "a.nc", {"time": 1, "z": 2, "y": 3, "x": 4}, coords)
    expect_error(p, "y axis", "not monotonic")


def test_xy_in_degrees_rejected_unless_the_grid_is_lat_lon(tmp_path):
    coords = cf_coords()
    coords["x"] = (np.arange(4.0), {"axis": "X", "units": "degrees_east"})
    p = make_nc(tmp_path / "a.nc", {"time": 1, "z": 2, "y": 3, "x": 4}, coords)
    expect_error(p, "x is in 'degrees_east' but y in 'km'", kind="bad_coordinates")
    coords["y"] = (np.arange(3.0), {"axis": "Y", "units": "degrees_north"})
    p = make_nc(tmp_path / "b.nc", {"time": 1, "z": 2, "y": 3, "x": 4}, coords)
    expect_error(p, "degrees go with grid_mapping_name latitude_longitude", kind="bad_coordinates")


def test_time_missing(tmp_path):
    p = make_nc(tmp_path / "scan_001.nc", {"z": 2, "y": 3, "x": 4}, cf_coords(), time=None)
    expect_error(p, "time missing", kind="bad_time")
    with pytest.raises(ScanError, match="time missing"):
        read_scan_time(p)


def test_time_from_name_when_no_variable(tmp_path):
    p = make_nc(tmp_path / "radar_20240501_181500.nc", {"z": 2, "y": 3, "x": 4}, cf_coords(), time=None)
    assert read_scan(p).time == np.datetime64("2024-05-01T18:15:00")


def test_time_variable_beats_name(tmp_path):
    d = tmp_path / "20240501"
    d.mkdir()
    p = make_nc(d / "181500.nc", {"time": 1, "z": 2, "y": 3, "x": 4}, cf_coords(), time=T2024 + 3600.0)
    assert read_scan(p).time == np.datetime64("2024-05-01T19:00:00")


def test_time_units_not_understood(tmp_path):
    p = make_nc(tmp_path / "a.nc", {"time": 1, "z": 2, "y": 3, "x": 4}, cf_coords(), time_units="seconds")
    expect_error(p, "time variable", "units")


def test_more_than_one_time_step(tmp_path):
    p = make_nc(tmp_path / "a.nc", {"time": 2, "z": 2, "y": 3, "x": 4}, cf_coords(), time=[0.0, 300.0])
    expect_error(p, "more than one time step", kind="bad_field")


@pytest.mark.parametrize("dims", [("x",), ("time", "e", "z", "y", "x")])
def test_wrong_number_of_dims(tmp_path, dims):
    sizes = {"time": 1, "e": 2, "z": 2, "y": 3, "x": 4}
    p = make_nc(tmp_path / "a.nc", {d: sizes[d] for d in ("time", "e", "z", "y", "x")}, cf_coords(),
                field=("DBZ", "f4", dims))
    expect_error(p, "dimension", "expected 2 to 4")


def test_wrong_dimension_order(tmp_path):
    p = make_nc(tmp_path / "a.nc", {"time": 1, "z": 2, "y": 3, "x": 4}, cf_coords(),
                field=("DBZ", "f4", ("time", "z", "x", "y")))
    expect_error(p, "order")


def test_scan_error_is_value_error_and_pickles(tmp_path):
    p = tmp_path / "junk.nc"
    p.write_text("junk")
    with pytest.raises(ValueError) as info:
        read_scan(p)
    again = pickle.loads(pickle.dumps(info.value))
    assert isinstance(again, ScanError) and str(again) == str(info.value) and again.path == p


# --- what users really bring, read correctly -------------------------------------------------------

@pytest.mark.parametrize("typ", ["i1", "i2", "i4", "f4", "f8"])
def test_field_types_packed_or_not(tmp_path, typ):
    truth = np.array([[[-10.0, 0.0, 20.5, 55.0]] * 3] * 2)
    p = tmp_path / "a.nc"
    with netCDF4.Dataset(p, "w") as ds:
        for n, k in (("time", 1), ("z", 2), ("y", 3), ("x", 4)):
            ds.createDimension(n, k)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "hours since 2024-05-01"
        t[:] = 18.0
        for n, (vals, attrs) in cf_coords().items():
            ds.createVariable(n, "f4", (n,)).setncatts(attrs)
            ds[n][:] = vals
        fill = {"i1": -128, "i2": -32768, "i4": -999, "f4": -9999.0, "f8": -9999.0}[typ]
        ds.createVariable("crs", "i4", ()).setncatts(CRS)
        v = ds.createVariable("DBZH", typ, ("time", "z", "y", "x"), fill_value=fill)
        v.grid_mapping = "crs"
        if typ[0] == "i":
            v.scale_factor, v.add_offset = 0.5, 20.0  # int8 holds -10..55 dBZ this way
        v[0] = truth
        v[0, 1, 2, 3] = np.ma.masked
    s = read_scan(p, field="DBZH")
    assert s.time == np.datetime64("2024-05-01T18:00:00")
    assert s.missing.sum() == 1 and s.missing[1, 2, 3]
    assert s.dbz[1, 2, 3] == NO_ECHO_DBZ
    np.testing.assert_allclose(s.dbz[~s.missing], truth[~s.missing], atol=0.25)


def test_unsigned_byte_field(tmp_path):
    p = tmp_path / "a.nc"
    with netCDF4.Dataset(p, "w", format="NETCDF3_CLASSIC") as ds:
        for n, k in (("time", 1), ("y", 3), ("x", 4)):
            ds.createDimension(n, k)
        ds.createVariable("time", "f8", ("time",)).units = "seconds since 1970-01-01"
        ds["time"][:] = T2024
        for n in "yx":
            ds.createVariable(n, "f4", (n,)).setncatts({"y": Y, "x": X}[n])
            ds[n][:] = np.arange(len(ds.dimensions[n]))
        ds.createVariable("crs", "i4", ()).setncatts(CRS)
        v = ds.createVariable("DBZ", "i1", ("time", "y", "x"))
        v.setncatts({"_Unsigned": "true", "scale_factor": 0.5, "add_offset": -32.0, "_FillValue": np.int8(0),
                     "grid_mapping": "crs"})
        v.set_auto_maskandscale(False)
        v[0] = np.array([[0, 64, 200, 254]] * 3, np.uint8).view(np.int8)
    s = read_scan(p)
    assert s.grid.shape == (1, 3, 4)
    np.testing.assert_allclose(s.dbz[0, 0], [NO_ECHO_DBZ, 0.0, 68.0, 95.0])
    assert s.missing[0, :, 0].all() and not s.missing[0, :, 1:].any()


def test_composite_without_z_dimension(tmp_path):
    p = make_nc(tmp_path / "a.nc", {"time": 1, "y": 3, "x": 4}, {"y": (np.arange(3.0), Y), "x": (np.arange(4.0), X)})
    s = read_scan(p)
    assert s.dbz.shape == (1, 3, 4) and s.grid.z_km.tolist() == [0.0]


def test_lrose_names_and_metres(tmp_path):
    coords = {"z0": (np.array([500.0, 1500.0]), {"units": "m", "positive": "up"}),
              "y0": (np.arange(3) * 2000.0, {"axis": "Y", "units": "m"}),
              "x0": (np.arange(4) * 2000.0, {"standard_name": "projection_x_coordinate", "units": "meters"})}
    p = make_nc(tmp_path / "a.nc", {"time": 1, "z0": 2, "y0": 3, "x0": 4}, coords)
    s = read_scan(p)
    assert s.grid.z_km.tolist() == [0.5, 1.5] and s.grid.dx_km == 2.0 and s.grid.dy_km == 2.0


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    p = good_scan(tmp_path / "a.nc")
    before = p.read_bytes()
    with pytest.raises(ValueError):
        write_grid_netcdf(p, np.zeros((1, 2, 2)), None, "2024-05-01", GRID)  # wrong shape
    with pytest.raises(RuntimeError):
        with atomic_write(p) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("interrupted")
    assert p.read_bytes() == before
    assert [q.name for q in tmp_path.iterdir()] == ["a.nc"]


# --- impossible data: what a fuzz campaign found accepted silently (issue 11) ------------------------

DIMS = {"time": 1, "z": 2, "y": 3, "x": 4}


def edit(path: Path, change) -> Path:
    "Apply `change(ds)` to a file opened for appending (as a corrupting tool or a careless script would)."
    with netCDF4.Dataset(path, "a") as ds:
        change(ds)
    return path


def packed(tmp_path, name="20240501_180000.nc") -> Path:
    "A good short-packed scan (LROSE layout, scale_factor 0.01, -10..60 dBZ)."
    return good_scan(tmp_path / name)


def set_attr(var, key, value):
    def change(ds):
        ds[var].setncattr(key, value)
    return change


def del_attr(var, key):
    def change(ds):
        ds[var].delncattr(key)
    return change


def test_a_good_packed_scan_reads(tmp_path):
    s = read_scan(packed(tmp_path))
    assert s.dbz.min() == pytest.approx(-10) and s.dbz.max() == pytest.approx(60)
    assert not s.missing.any() and s.stored_decreasing == ()


@pytest.mark.parametrize("key", ["scale_factor", "add_offset"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e300])
def test_non_finite_or_huge_packing_is_refused(tmp_path, key, value):
    p = edit(packed(tmp_path), set_attr("DBZ", key, np.float64(value)))
    expect_error(p, key, "not a usable number", kind="bad_packing")


@pytest.mark.parametrize("key,value,words", [("scale_factor", "0.01", "not a usable number"),
                                             ("scale_factor", np.float32(0.0), "scale_factor is 0"),
                                             ("valid_range", "-40 95", "not two numbers"),
                                             ("valid_min", "low", "not a number"),
                                             ("missing_value", "none", "not a number")])
def test_unusable_packing_attribute_says_which(tmp_path, key, value, words):
    p = edit(packed(tmp_path), set_attr("DBZ", key, value))
    msg = expect_error(p, key, words, kind="bad_packing")
    assert "ValueError" not in msg and "unreadable" not in msg


def test_dropped_scale_factor_is_out_of_range(tmp_path):
    p = edit(packed(tmp_path), del_attr("DBZ", "scale_factor"))  # counts -1000..6000 read as dBZ
    msg = expect_error(p, "outside the physical range -40 to 95 dBZ", "from -1000 to 6000 dBZ", kind="out_of_range")
    assert f"of {int(np.prod(GRID.shape))} pixels" in msg


def test_wrong_unsigned_is_out_of_range(tmp_path):
    p = edit(packed(tmp_path), set_attr("DBZ", "_Unsigned", "true"))  # negative counts become 64536.. -> 645 dBZ
    expect_error(p, "outside the physical range", kind="out_of_range")


def test_bit_flip_in_classic_file_is_out_of_range(tmp_path):
    p = make_nc(tmp_path / "a.nc", DIMS, cf_coords(), field=("DBZ", "i2", None), fmt="NETCDF3_CLASSIC",
                data=np.full((1, 2, 3, 4), 1000, np.int16))
    edit(p, set_attr("DBZ", "scale_factor", np.float32(0.01)))
    assert read_scan(p).dbz.max() == pytest.approx(10.0)
    raw = bytearray(p.read_bytes())
    raw[raw.rindex(b"\x03\xe8")] ^= 0x40  # the high byte of the last value (big-endian): 1000 -> 17384 counts = 173.84 dBZ
    p.write_bytes(bytes(raw))
    expect_error(p, "1 of 24 pixels", "173.8", kind="out_of_range")


def test_single_pixel_of_1e30_is_out_of_range(tmp_path):
    data = np.full((1, 2, 3, 4), 20.0, np.float32)
    data[0, 1, 2, 3] = 1e30
    p = make_nc(tmp_path / "a.nc", DIMS, cf_coords(), data=data)
    expect_error(p, "1 of 24 pixels", "1e+30", kind="out_of_range")


def test_the_range_is_a_parameter(tmp_path):
    p = make_nc(tmp_path / "a.nc", DIMS, cf_coords(), data=np.full((1, 2, 3, 4), 60.0))
    assert read_scan(p).dbz.max() == 60.0
    with pytest.raises(ScanError, match="outside the physical range -10 to 50 dBZ") as info:
        read_scan(p, dbz_range=(-10, 50))
    assert info.value.kind == "out_of_range"


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_float_values_are_refused(tmp_path, value):
    data = np.full((1, 2, 3, 4), 20.0, np.float32)
    data[0, 0, 0, 0] = value
    expect_error(make_nc(tmp_path / "a.nc", DIMS, cf_coords(), data=data), "1 of 24 pixels are NaN or infinite",
                 kind="non_finite")


def test_float64_overflow_is_refused(tmp_path):
    data = np.full((1, 2, 3, 4), 20.0)
    data[0, 0, 0, 0] = 1e300  # no float32 holds it
    expect_error(make_nc(tmp_path / "a.nc", DIMS, cf_coords(), field=("DBZ", "f8", None), data=data), kind="non_finite")


def test_nan_in_float_data_is_missing_not_refused(tmp_path):
    data = np.full((1, 2, 3, 4), 20.0, np.float32)
    data[0, 0, 0, 0] = np.nan
    s = read_scan(make_nc(tmp_path / "a.nc", DIMS, cf_coords(), data=data))
    assert s.missing.sum() == 1 and s.missing[0, 0, 0]


def test_empty_z_dimension_is_refused(tmp_path):
    coords = cf_coords(nz=0)
    p = make_nc(tmp_path / "a.nc", {**DIMS, "z": 0}, coords, data=np.zeros((1, 0, 3, 4)))
    expect_error(p, "no height levels", kind="bad_levels")


@pytest.mark.parametrize("levels,words", [([0.5, np.nan], "NaN or infinite"), ([0.5, np.inf], "NaN or infinite"),
                                          ([1.5, 1.5], "repeat or are out of order"),
                                          ([0.5, 3.0, 1.5], "repeat or are out of order"),
                                          ([0.5, 1e36], "outside -1 to 40 km")])
def test_bad_levels_are_refused(tmp_path, levels, words):
    coords = cf_coords(nz=len(levels))
    coords["z"] = (np.array(levels), Z)
    p = make_nc(tmp_path / "a.nc", {**DIMS, "z": len(levels)}, coords)
    expect_error(p, "height levels", words, kind="bad_levels")


def test_levels_stored_top_down_are_flipped(tmp_path):
    coords = cf_coords()
    coords["z"] = (np.array([3.0, 1.0]), Z)
    data = np.stack([np.full((3, 4), 30.0), np.full((3, 4), 10.0)])[None]
    s = read_scan(make_nc(tmp_path / "a.nc", DIMS, coords, data=data))
    assert s.grid.z_km.tolist() == [1.0, 3.0] and s.dbz[0, 0, 0] == 10.0 and s.stored_decreasing == ("z",)


@pytest.mark.parametrize("change,words", [
    (del_attr("DBZ", "grid_mapping"), "no grid_mapping attribute"),
    (set_attr("DBZ", "grid_mapping", "grid_mapping_7"), "names 'grid_mapping_7', which is not a variable"),
    (set_attr("DBZ", "grid_mapping", np.float32(3.5)), "which is not a variable"),
    (set_attr("grid_mapping_0", "grid_mapping_name", "gibberish"), "'gibberish' is not one TITAN understands"),
    (del_attr("grid_mapping_0", "grid_mapping_name"), "None is not one TITAN understands"),
    (del_attr("grid_mapping_0", "latitude_of_projection_origin"), "lacks latitude_of_projection_origin"),
    (set_attr("grid_mapping_0", "latitude_of_projection_origin", np.nan), "not 1 finite number"),
    (set_attr("grid_mapping_0", "latitude_of_projection_origin", 123.0), "is not a latitude"),
    (set_attr("grid_mapping_0", "longitude_of_projection_origin", "east"), "longitude_of_projection_origin"),
])
def test_missing_or_garbage_projection_is_refused(tmp_path, change, words):
    expect_error(edit(packed(tmp_path), change), words, kind="bad_projection")


def test_lambert_conformal_conic_reads_and_needs_its_attributes(tmp_path):
    lcc = {"grid_mapping_name": "lambert_conformal_conic", "standard_parallel": [33.0, 45.0],
           "longitude_of_central_meridian": -97.0, "latitude_of_projection_origin": 40.0}
    coords = cf_coords()
    coords["x"] = (np.arange(4) + 800.0, X)  # a Lambert grid need not hold its origin
    s = read_scan(make_nc(tmp_path / "a.nc", DIMS, coords, crs=lcc))
    assert s.grid.projection["standard_parallel"] == [33.0, 45.0]
    p = make_nc(tmp_path / "b.nc", DIMS, coords, crs={k: v for k, v in lcc.items() if k != "standard_parallel"})
    expect_error(p, "lacks standard_parallel", kind="bad_projection")


@pytest.mark.parametrize("axis", ["x0", "y0"])
def test_coordinates_times_1e36_are_refused(tmp_path, axis):
    def scale(ds):
        ds[axis][:] = ds[axis][:] * 1e36
    expect_error(edit(packed(tmp_path), scale), f"{axis[0]} coordinates reach", "within 2000 km", kind="bad_coordinates")


def test_grid_shifted_away_from_its_radar_is_refused(tmp_path):
    def shift(ds):
        ds["x0"][:] = ds["x0"][:] + 500.0
    expect_error(edit(packed(tmp_path), shift), "lies outside the grid", kind="bad_coordinates")


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_time_of_1970_is_refused(tmp_path, seconds):
    def set_time(ds):
        ds["time"][:] = seconds
    p = edit(packed(tmp_path), set_time)
    msg = expect_error(p, "before 1990-01-01", kind="bad_time")
    assert "1970" in msg or "1969" in msg
    with pytest.raises(ScanError, match="before 1990-01-01"):
        read_scan_time(p)


def test_time_in_the_future_is_refused(tmp_path):
    def set_time(ds):
        ds["time"][:] = 1e10  # year 2286
    expect_error(edit(packed(tmp_path), set_time), "in the future", kind="bad_time")


def test_text_time_variable_says_so(tmp_path):
    p = make_nc(tmp_path / "a.nc", {"z": 2, "y": 3, "x": 4}, cf_coords(), time=None)
    with netCDF4.Dataset(p, "a") as ds:
        t = ds.createVariable("time", str, ())
        t.units = "seconds since 1970-01-01"
        t[...] = "2024-05-01T18:00:00"
    msg = expect_error(p, "time variable 'time' holds text", kind="bad_time")
    assert "ValueError" not in msg


def test_empty_time_dimension_says_so(tmp_path):
    p = make_nc(tmp_path / "a.nc", {**DIMS, "time": 0}, cf_coords(), time=[], data=np.zeros((0, 2, 3, 4)))
    msg = expect_error(p, "time dimension 'time' is empty", "holds no scan", kind="bad_time")
    assert "more than one" not in msg


def test_coordinate_reversed_without_its_data_is_flagged(tmp_path):
    "One file cannot show it: the grid is the same, only the storage order differs (prepare compares that)."
    p = packed(tmp_path)
    before = read_scan(p)
    def reverse(ds):
        ds["x0"][:] = ds["x0"][::-1]
    after = read_scan(edit(p, reverse))
    assert after.grid.matches(before.grid)
    np.testing.assert_array_equal(after.dbz, before.dbz[..., ::-1])  # mirrored...
    assert before.stored_decreasing == () and after.stored_decreasing == ("x",)  # ...and marked as stored reversed
