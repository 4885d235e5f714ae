"""A seeded fuzz test of the reader: mutated copies of the embedded archive's scans go through
`nowcast.io.read_scans`. Whatever the damage, each file comes back as a `Scan` that keeps the reader's
contract or as a `ScanError`; nothing else is raised and nothing hangs.

Mutations: byte damage (a run of bytes zeroed, random bytes, bit flips), truncation, and attribute and
value damage done with netCDF4 (packing attributes, projection, coordinates, levels, time, single
pixels, radar position, time bounds), applied to three layouts of the same scans (LROSE NetCDF-4 compressed, plain-CF NetCDF-4
uncompressed, NetCDF-3 classic).

Run as a script for a bigger campaign and its figures:
    python tests/test_io_fuzz.py --mutants 3300 --seed 11
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
import warnings
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from _bad_scans import SEED_EVENT, embedded_archive, hang_case, scan_at
from nowcast.grids import PROJECTIONS
from nowcast.io import (DBZ_RANGE, EARLIEST_SCAN, MAX_EXTENT_KM, NO_ECHO_DBZ, SCAN_ERROR_KINDS, Scan, ScanError,
                        read_scan, read_scans, write_grid_netcdf)


# --- seeds: scans of the embedded archive in three layouts -------------------------------------------

def classic_copy(src: Path, dst: Path) -> Path:
    "The same scan as NetCDF-3 classic (every variable and attribute copied)."
    with netCDF4.Dataset(src) as a, netCDF4.Dataset(dst, "w", format="NETCDF3_CLASSIC") as b:
        for name, dim in a.dimensions.items():
            b.createDimension(name, len(dim))
        for name, v in a.variables.items():
            attrs = {k: v.getncattr(k) for k in v.ncattrs()}
            w = b.createVariable(name, v.dtype, v.dimensions, fill_value=attrs.pop("_FillValue", None))
            w.setncatts(attrs)
            v.set_auto_maskandscale(False)
            w.set_auto_maskandscale(False)
            w[...] = v[...]
    return dst


def seed_files(folder: Path, archive: Path | None = None) -> list[Path]:
    "Three scans of the embedded archive (built into `folder` unless given), each in another layout."
    archive = archive or embedded_archive(folder / "archive")
    scans = [scan_at(archive, SEED_EVENT, f"19{m}") for m in ("30", "45")]
    scans.append(sorted((archive / "2024-05-05_supercell_00").rglob("*.nc"))[15])
    plain = read_scan(scans[1])
    span = (plain.time - np.timedelta64(270, "s"), plain.time)  # with LROSE's radar position and CF time bounds
    return [scans[0],
            write_grid_netcdf(folder / "plain_20240507_194500.nc", plain.dbz, plain.missing, plain.time, plain.grid,
                              zlib=False, lrose_names=False, sensor=(39.87, -104.76, 1.675), time_bounds=span),
            classic_copy(scans[2], folder / "classic_20240505.nc")]


# --- mutations -----------------------------------------------------------------------------------------

def byte_mutation(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    "Zero a run of bytes, overwrite a few with random ones, flip some bits, or truncate."
    b, n = bytearray(data), len(data)
    op = rng.choice(["zero_run", "random_bytes", "bit_flips", "truncate"])
    if op == "zero_run":
        at, k = int(rng.integers(0, n)), int(rng.integers(1, 4096))
        b[at:at + k] = bytes(len(b[at:at + k]))
        return bytes(b), f"zero {k} bytes at {at}"
    if op == "random_bytes":
        at = rng.integers(0, n, int(rng.integers(1, 16)))
        for i in at:
            b[int(i)] = int(rng.integers(0, 256))
        return bytes(b), f"random bytes at {sorted(at.tolist())}"
    if op == "bit_flips":
        at = rng.integers(0, n, int(rng.integers(1, 8)))
        for i in at:
            b[int(i)] ^= 1 << int(rng.integers(0, 8))
        return bytes(b), f"bit flips at {sorted(at.tolist())}"
    k = int(rng.integers(0, n))
    return bytes(b[:k]), f"truncated to {k} bytes"


ODD_NUMBERS = [np.nan, np.inf, -np.inf, 1e300, 1e30, 0.0, -1.0, 1e-30, 100.0]
ODD_VALUES = ODD_NUMBERS + ["abc", "0.01", "true"]


def _field(ds):
    return next(v for n, v in ds.variables.items() if n in ("DBZ",))


def _axes(ds):
    "x, y, z coordinate variables of the field."
    f = _field(ds)
    return [ds[d] for d in f.dimensions[1:]][::-1]  # x, y, z


def attribute_mutation(ds, rng: np.random.Generator) -> str:
    "Damage one attribute or a few values of an open (appendable) scan; returns what was done."
    f = _field(ds)
    gm = ds[f.grid_mapping] if "grid_mapping" in f.ncattrs() and f.grid_mapping in ds.variables else None
    x, y, z = _axes(ds)
    t = ds["time"]
    op = int(rng.integers(0, 18))
    pick = lambda seq: seq[int(rng.integers(0, len(seq)))]
    if op == 0:
        key, value = pick(["scale_factor", "add_offset"]), pick(ODD_VALUES)
        f.setncattr(key, value)
        return f"field {key} = {value!r}"
    if op == 1:
        key = pick(["scale_factor", "add_offset", "units", "grid_mapping"])
        if key in f.ncattrs():
            f.delncattr(key)
        return f"field {key} deleted"
    if op == 2:
        key, value = pick(["_Unsigned", "valid_range", "valid_min", "valid_max", "missing_value"]), pick(ODD_VALUES + [[0, 10]])
        f.setncattr(key, value)
        return f"field {key} = {value!r}"
    if op == 3:
        value = pick(["nowhere", "time", "x0"])
        f.setncattr("grid_mapping", value)
        return f"grid_mapping = {value!r}"
    if op == 4 and gm is not None:
        key = pick(["grid_mapping_name", "latitude_of_projection_origin", "longitude_of_projection_origin"])
        value = pick(ODD_VALUES + ["polar_stereographic", 123.0, -400.0])
        gm.setncattr(key, value)
        return f"projection {key} = {value!r}"
    if op == 5 and gm is not None:
        key = pick(gm.ncattrs())
        gm.delncattr(key)
        return f"projection {key} deleted"
    if op == 6:
        v, factor = pick([x, y, z]), pick([1e36, -1.0, 1e3, 0.0])
        v[:] = v[:] * factor
        return f"{v.name} x {factor:g}"
    if op == 7:
        v = pick([x, y, z])
        v[:] = v[::-1]
        return f"{v.name} reversed without its data"
    if op == 8:
        v, value = pick([x, y, z]), pick(ODD_NUMBERS)
        v[int(rng.integers(0, len(v)))] = value
        return f"one {v.name} value = {value!r}"
    if op == 9:
        v = pick([x, y, z])
        vals = v[:]
        if len(vals) > 1:
            i = int(rng.integers(1, len(vals)))
            vals[i] = vals[i - 1]
            v[:] = vals
        return f"{v.name} value repeated"
    if op == 10:
        v, shift = pick([x, y]), pick([500.0, -3000.0, 1e6])
        v[:] = v[:] + shift
        return f"{v.name} shifted by {shift:g}"
    if op == 11:
        v, units = pick([x, y, z, t]), pick(["degrees_east", "m", "hours since 1970-01-01", "garbage", ""])
        v.setncattr("units", units)
        return f"{v.name} units = {units!r}"
    if op == 12:
        value = pick([0.0, -1.0, 1e12, np.nan, -1e12, 1e300])
        t[:] = value
        return f"time = {value!r}"
    if op == 13:
        f.set_auto_maskandscale(False)
        idx = tuple(int(rng.integers(0, s)) for s in f.shape)
        big = np.iinfo(f.dtype).max if f.dtype.kind in "iu" else pick([1e30, np.inf, -np.inf, -1e30])
        f[idx] = big
        return f"one pixel raw = {big!r}"
    if op == 14:
        key = pick(["positive", "standard_name", "axis"])
        v = pick([x, y, z])
        if key in v.ncattrs():
            v.delncattr(key)
        return f"{v.name} {key} deleted"
    if op == 16 and "time_bounds" in ds.variables:
        value = pick([[np.nan, 0.0], [1e300, -1e300], [0.0, 0.0], t[:].tolist() * 2])
        ds["time_bounds"][0] = np.asarray(value, np.float64)[:2]
        return f"time_bounds = {value!r}"
    if op == 17 and "mdv_master_header" in ds.variables:
        key, value = pick(["mdv_sensor_lat", "mdv_sensor_lon", "mdv_sensor_alt"]), pick(ODD_VALUES + [123.0])
        ds["mdv_master_header"].setncattr(key, value)
        return f"radar position {key} = {value!r}"
    key = pick(["units", "calendar"])
    t.setncattr(key, pick(ODD_VALUES))
    return f"time {key} damaged"


def make_mutants(seeds: list[Path], folder: Path, n: int, seed: int) -> list[tuple[Path, str]]:
    "`n` mutated copies of the seed files: half byte damage (truncation included), half attribute damage."
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    originals = [p.read_bytes() for p in seeds]
    out = []
    for k in range(n):
        i = int(rng.integers(0, len(seeds)))
        path = folder / f"m{k:05d}_{seeds[i].name}"
        if k % 2 == 0:
            data, what = byte_mutation(originals[i], rng)
            path.write_bytes(data)
        else:
            path.write_bytes(originals[i])
            try:
                with netCDF4.Dataset(path, "a") as ds, np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # odd values cast into a float32 coordinate overflow, as intended
                    what = attribute_mutation(ds, rng)
            except Exception as err:  # a mutation the library refuses to make leaves a damaged or intact copy
                what = f"attribute mutation failed ({type(err).__name__})"
        out.append((path, f"{seeds[i].name}: {what}"))
    return out


# --- the contract of an accepted scan ------------------------------------------------------------------

def contract_violations(s: Scan, dbz_range=DBZ_RANGE) -> list[str]:
    "What an accepted scan breaks of the reader's contract (empty when it keeps it)."
    bad, g = [], s.grid
    lo, hi = dbz_range
    ok = ~s.missing
    if s.dbz.dtype != np.float32 or s.missing.dtype != bool or s.dbz.shape != g.shape or s.missing.shape != g.shape:
        bad.append(f"arrays {s.dbz.dtype} {s.dbz.shape} / {s.missing.dtype} {s.missing.shape} vs grid {g.shape}")
    if g.shape[0] < 1 or g.shape[1] < 2 or g.shape[2] < 2:
        bad.append(f"empty grid {g.shape}")
    if not np.all(np.isfinite(s.dbz)):
        bad.append("non-finite dBZ")
    if ok.any() and (s.dbz[ok].min() < lo or s.dbz[ok].max() > hi):
        bad.append(f"dBZ {s.dbz[ok].min()}..{s.dbz[ok].max()} outside {dbz_range}")
    if not np.all(s.dbz[s.missing] == NO_ECHO_DBZ):
        bad.append("missing pixels do not hold NO_ECHO_DBZ")
    for name, c in (("x", g.x_km), ("y", g.y_km), ("z", g.z_km)):
        if not np.all(np.isfinite(c)) or (len(c) > 1 and not np.all(np.diff(c) > 0)):
            bad.append(f"{name} not finite and strictly increasing")
    if max((len(g.x_km) - 1) * abs(g.dx_km), (len(g.y_km) - 1) * abs(g.dy_km)) / 2 > MAX_EXTENT_KM:
        bad.append("x/y reach farther from the grid's centre than a radar domain does")
    if g.projection.get("grid_mapping_name") not in PROJECTIONS:
        bad.append(f"projection {g.projection!r}")
    elif g.projection["grid_mapping_name"] == "azimuthal_equidistant":
        try:
            lat, lon = g.origin_latlon
            if not (abs(lat) <= 90 and abs(lon) <= 360):
                bad.append(f"projection origin {lat}, {lon}")
        except (TypeError, ValueError):
            bad.append(f"projection origin {g.projection!r}")
    if s.sensor is not None and not (abs(s.sensor[0]) <= 90 and abs(s.sensor[1]) <= 360):
        bad.append(f"radar position {s.sensor}")
    if s.time_bounds is not None and not (len(s.time_bounds) == 2 and all(isinstance(b, np.datetime64) for b in s.time_bounds)):
        bad.append(f"time bounds {s.time_bounds}")
    now = np.datetime64(datetime.now(timezone.utc).replace(tzinfo=None), "s")
    if not EARLIEST_SCAN <= s.time <= now + np.timedelta64(1, "D"):
        bad.append(f"time {s.time}")
    return bad


def fuzz(mutants: list[tuple[Path, str]], timeout_s: float = 5.0, workers: int = 2) -> dict:
    "Read every mutant in a bounded way; count outcomes and collect anything that breaks the rules."
    outcomes, broken, t0 = Counter(), [], time.monotonic()
    what = dict(mutants)
    for path, got in read_scans([p for p, _ in mutants], timeout_s=timeout_s, workers=workers):
        if isinstance(got, ScanError):
            outcomes[got.kind] += 1
            if got.kind not in SCAN_ERROR_KINDS or not str(got).startswith(str(path)):
                broken.append((what[path], f"badly formed error: {got.kind}: {got}"))
        elif isinstance(got, Scan):
            outcomes["accepted"] += 1
            if v := contract_violations(got):
                broken.append((what[path], f"accepted but {v}"))
        else:
            broken.append((what[path], f"returned {type(got).__name__}"))
    return {"mutants": len(mutants), "outcomes": dict(outcomes), "broken": broken,
            "seconds": round(time.monotonic() - t0, 1)}


# --- tests -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return embedded_archive(tmp_path_factory.mktemp("embedded") / "data")


@pytest.fixture(scope="module")
def seeds(archive, tmp_path_factory) -> list[Path]:
    return seed_files(tmp_path_factory.mktemp("fuzz_seeds"), archive)


def test_seeds_are_good_scans(seeds):
    for p in seeds:
        assert contract_violations(read_scan(p)) == []


def test_fuzzed_scans_are_refused_or_keep_the_contract(seeds, tmp_path):
    mutants = make_mutants(seeds, tmp_path, n=300, seed=2024)
    report = fuzz(mutants, timeout_s=5.0)
    assert report["broken"] == [], report["broken"][:10]
    assert sum(report["outcomes"].values()) == 300
    # the campaign is not trivial: many refusals of several kinds, and intact-looking mutants accepted
    assert report["outcomes"].get("accepted", 0) > 20
    assert len([k for k in report["outcomes"] if k != "accepted"]) >= 6, report["outcomes"]


def _hang_on_b(path):
    if Path(path).name == "b.nc":
        time.sleep(600)
    return Path(path).stem


def test_one_worker_goes_on_after_a_hang_with_the_files_queued_behind_it():
    from nowcast.io import ReaderPool
    t0 = time.monotonic()
    with ReaderPool(_hang_on_b, workers=1, timeout_s=1.0) as pool:
        got = list(pool.map(["a.nc", "b.nc", "c.nc", "d.nc", "e.nc"]))
        assert [p.name for p, _ in got] == ["a.nc", "b.nc", "c.nc", "d.nc", "e.nc"]
        assert [v for _, v in got if not isinstance(v, ScanError)] == ["a", "c", "d", "e"]
        assert got[1][1].kind == "timeout" and pool.replaced == 1
        stopped = pool.map(["b.nc", "c.nc", "d.nc"])
        next(stopped), stopped.close()  # stopped early: nothing stale reaches the next map
        assert list(pool.map(["a.nc"])) == [(Path("a.nc"), "a")]
    assert time.monotonic() - t0 < 10


def test_a_file_that_hangs_netcdf_is_a_timeout_not_a_hang(archive, tmp_path):
    bad = hang_case(tmp_path / "20240507_194500.nc")  # 3,464 bytes zeroed at offset 11,115
    # the file really hangs the NetCDF library (if this fails, the library changed: find a new hang case
    # with `python tests/test_io_fuzz.py --mutants 3300` and replace tests/data/hang_case.nc)
    probe = [sys.executable, "-c", f"import netCDF4; netCDF4.Dataset({str(bad)!r}).close()"]
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(probe, timeout=5, capture_output=True)
    good = scan_at(archive, SEED_EVENT, "1950")
    t0 = time.monotonic()
    got = dict(read_scans([bad, good, bad, good], timeout_s=2.0, workers=1))
    assert time.monotonic() - t0 < 15
    assert got[bad].kind == "timeout" and "longer than 2 s" in str(got[bad]) and str(got[bad]).startswith(str(bad))
    assert isinstance(got[good], Scan)  # the replacement worker goes on with the next file


if __name__ == "__main__":
    import tempfile
    ap = argparse.ArgumentParser(description="fuzz nowcast.io.read_scan with mutated copies of the embedded archive's scans")
    ap.add_argument("--mutants", type=int, default=300)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--timeout-s", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        s = seed_files(Path(d) / "seeds")
        m = make_mutants(s, Path(d) / "mutants", a.mutants, a.seed)
        r = fuzz(m, a.timeout_s, a.workers)
    print(f"{r['mutants']} mutants in {r['seconds']} s (seed {a.seed}, timeout {a.timeout_s:g} s, {a.workers} workers)")
    for k, n in sorted(r["outcomes"].items(), key=lambda kv: -kv[1]):
        print(f"  {k:<16} {n:>5}")
    print(f"contract broken: {len(r['broken'])}")
    for what, why in r["broken"][:20]:
        print(f"  {what}: {why}")
    sys.exit(1 if r["broken"] else 0)
