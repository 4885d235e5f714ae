"""Bad input to `nowcast.io.read_scan`: every problem is a `ScanError` that names the file and the problem.

Each test writes a small file into `tmp_path`; together they cover what users' archives really bring.
"""
import pickle
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from nowcast.io import (NO_ECHO_DBZ, Grid, ScanError, atomic_write, azimuthal_equidistant, read_scan,
                        read_scan_time, write_grid_netcdf)

GRID = Grid(np.arange(6) * 2.0 - 5, np.arange(5) * 2.0 - 4, [0.5, 2.0], azimuthal_equidistant(39.87, -104.76))


def good_scan(path: Path, **kw) -> Path:
    dbz = np.linspace(-10, 60, int(np.prod(GRID.shape)), dtype=np.float32).reshape(GRID.shape)
    return write_grid_netcdf(path, dbz, None, "2024-05-01T18:00:00", GRID, **kw)


def make_nc(path: Path, dims: dict, coords: dict, field=("DBZ", "f4", None), *, time=0.0,
            time_units="seconds since 1970-01-01T00:00:00Z", fmt="NETCDF4", data=None):
    """A hand-made file: `coords` maps a coordinate name to (values, attrs); `field` is (name, type, dims)."""
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
        shape = tuple(dims[d] for d in fdims)
        v[...] = np.full(shape, 10.0) if data is None else data
    return path


X = {"standard_name": "projection_x_coordinate", "units": "km"}
Y = {"standard_name": "projection_y_coordinate", "units": "km"}
Z = {"standard_name": "altitude", "units": "km", "positive": "up"}


def cf_coords(nx=4, ny=3, nz=2):
    return {"z": (np.arange(nz) + 0.5, Z), "y": (np.arange(ny) * 1.0, Y), "x": (np.arange(nx) * 1.0, X)}


def expect_error(path, *words, field="DBZ"):
    with pytest.raises(ScanError) as info:
        read_scan(path, field=field)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg
    for w in words:
        assert w in msg, msg
    return msg


def test_no_such_file(tmp_path):
    expect_error(tmp_path / "nope.nc", "no such file")


def test_not_netcdf(tmp_path):
    p = tmp_path / "20240501_180000.nc"
    p.write_text("this is a text file, not NetCDF\n")
    expect_error(p, "not NetCDF")
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
    expect_error(p, "truncated")


def test_classic_with_record_dimension_reads(tmp_path):
    p = tmp_path / "rec.nc"
    with netCDF4.Dataset(p, "w", format="NETCDF3_CLASSIC") as ds:
        ds.createDimension("time", None)
        for n, k in (("z", 2), ("y", 3), ("x", 4)):
            ds.createDimension(n, k)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "seconds since 1970-01-01"
        t[0] = 60.0
        for n, (vals, attrs) in cf_coords().items():
            v = ds.createVariable(n, "f4", (n,))
            v.setncatts(attrs)
            v[:] = vals
        ds.createVariable("DBZ", "i2", ("time", "z", "y", "x"))[0] = 7
    s = read_scan(p)
    assert s.time == np.datetime64("1970-01-01T00:01:00")
    assert (s.dbz == 7).all()


def test_field_missing_lists_variables(tmp_path):
    p = good_scan(tmp_path / "20240501_180000.nc")
    msg = expect_error(p, "'reflectivity' missing", "DBZ", "x0", "time", field="reflectivity")
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
    expect_error(p, "x axis", "irregular spacing")


def test_non_monotonic_axis(tmp_path):
    coords = cf_coords()
    coords["y"] = (np.array([0.0, 2.0, 1.0]), Y)
    p = make_nc(tmp_path / "a.nc", {"time": 1, "z": 2, "y": 3, "x": 4}, coords)
    expect_error(p, "y axis", "not monotonic")


def test_xy_in_degrees_rejected(tmp_path):
    coords = cf_coords()
    coords["x"] = (np.arange(4.0), {"axis": "X", "units": "degrees_east"})
    p = make_nc(tmp_path / "a.nc", {"time": 1, "z": 2, "y": 3, "x": 4}, coords)
    expect_error(p, "x axis", "degrees_east")


def test_time_missing(tmp_path):
    p = make_nc(tmp_path / "scan_001.nc", {"z": 2, "y": 3, "x": 4}, cf_coords(), time=None)
    expect_error(p, "time missing")
    with pytest.raises(ScanError, match="time missing"):
        read_scan_time(p)


def test_time_from_name_when_no_variable(tmp_path):
    p = make_nc(tmp_path / "radar_20240501_181500.nc", {"z": 2, "y": 3, "x": 4}, cf_coords(), time=None)
    assert read_scan(p).time == np.datetime64("2024-05-01T18:15:00")


def test_time_variable_beats_name(tmp_path):
    d = tmp_path / "20240501"
    d.mkdir()
    p = make_nc(d / "181500.nc", {"time": 1, "z": 2, "y": 3, "x": 4}, cf_coords(), time=3600.0)
    assert read_scan(p).time == np.datetime64("1970-01-01T01:00:00")


def test_time_units_not_understood(tmp_path):
    p = make_nc(tmp_path / "a.nc", {"time": 1, "z": 2, "y": 3, "x": 4}, cf_coords(), time_units="seconds")
    expect_error(p, "time variable", "units")


def test_more_than_one_time_step(tmp_path):
    p = make_nc(tmp_path / "a.nc", {"time": 2, "z": 2, "y": 3, "x": 4}, cf_coords(), time=[0.0, 300.0])
    expect_error(p, "more than one time step")


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
        v = ds.createVariable("DBZH", typ, ("time", "z", "y", "x"), fill_value=fill)
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
        ds["time"][:] = 0
        for n in "yx":
            ds.createVariable(n, "f4", (n,)).setncatts({"y": Y, "x": X}[n])
            ds[n][:] = np.arange(len(ds.dimensions[n]))
        v = ds.createVariable("DBZ", "i1", ("time", "y", "x"))
        v.setncatts({"_Unsigned": "true", "scale_factor": 0.5, "add_offset": -32.0, "_FillValue": np.int8(0)})
        v.set_auto_maskandscale(False)
        v[0] = np.array([[0, 64, 200, 255]] * 3, np.uint8).view(np.int8)
    s = read_scan(p)
    assert s.grid.shape == (1, 3, 4)
    np.testing.assert_allclose(s.dbz[0, 0], [NO_ECHO_DBZ, 0.0, 68.0, 95.5])
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
