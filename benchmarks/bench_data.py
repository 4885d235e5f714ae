"""Benchmark of the data path: `prepare` throughput, cache size, and the DataLoader against the users' old way.

    python benchmarks/bench_data.py                      # full scale: 2 events x 160 scans of 500x500x18
    python benchmarks/bench_data.py --scans 40 --nx 128 --nz 6   # a quick reduced run
    python benchmarks/bench_data.py --smoke                      # seconds: 2 events x 16 scans of 32x32x2 (make test)

Writes reports/bench_data.json and reports/bench_data.md (`--out-dir`). Not a test: it prints figures.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch
from scipy.ndimage import gaussian_filter

from nowcast.data import RadarWindows, decode_codes, load_cache, make_loader, normalize, prepare
from nowcast.io import Grid, atomic_write, azimuthal_equidistant, write_grid_netcdf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from _smoke import add_output_args, output_dir  # noqa: E402
SMOKE = {"events": 2, "scans": 16, "nx": 32, "nz": 2, "workers": 0, "batch": 2, "old_windows": 1}


def write_archive(raw: Path, *, events: int, scans: int, nx: int, nz: int, seed: int = 0) -> int:
    "Moving smooth storms on an nx x nx x nz grid, one NetCDF per scan (TITAN layout), 5-minute cadence."
    rng = np.random.default_rng(seed)
    x = (np.arange(nx) - nx / 2 + 0.5) * 1.0
    grid = Grid(x, x, np.linspace(0.5, 17.0, nz), azimuthal_equidistant(39.87, -104.76))
    yy, xx = np.meshgrid(x, x, indexing="ij")
    out_of_range = np.hypot(yy, xx) > 0.48 * nx  # beyond the radar's range: missing
    n = 0
    for e in range(events):
        base = gaussian_filter(rng.normal(size=(2 * nx, 2 * nx)), sigma=nx / 40, mode="wrap")
        base = 25 + 60 * base / base.std()
        t0 = np.datetime64("2024-06-01T12:00:00", "s") + np.timedelta64(86400 * e, "s")
        for k in range(scans):
            field2d = np.roll(base, (k, 2 * k), axis=(0, 1))[:nx, :nx]
            dbz = np.stack([field2d - 2.5 * z for z in range(nz)]).astype(np.float32)
            dbz = np.clip(dbz, -30, 75)
            missing = np.broadcast_to(out_of_range, dbz.shape)
            t = t0 + np.timedelta64(300 * k, "s")
            name = str(t).replace("-", "").replace(":", "")
            write_grid_netcdf(raw / name[:8] / f"ncf_{name[:8]}_{name[9:]}.nc", dbz, missing, t, grid)
            n += 1
    return n


def write_synthetic(raw: Path, *, events: int, scans: int, nx: int, nz: int, seed: int = 7) -> int:
    "The project's synthetic archive (`nowcast.synthetic.make_archive`) at the requested scale."
    from nowcast.synthetic import make_archive
    kinds = ["advection", "multicell", "supercell"]
    plan = {k: sum(1 for e in range(events) if kinds[e % 3] == k) for k in kinds}
    return len(make_archive(raw, seed=seed, nx=nx, ny=nx, nz=nz, dx_km=1.0, z_top_km=17.0, cadence_s=300,
                            scans_per_event=scans, events={k: n for k, n in plan.items() if n},
                            origin_lat=39.87, origin_lon=-104.76))


class PeakRSS:
    "Samples the resident memory of this process and its children (DataLoader workers) in a thread."

    def __init__(self, every_s: float = 0.02):
        self.every_s, self.peak, self.peak_private, self._stop = every_s, 0, 0, threading.Event()

    def _sample(self):
        me = psutil.Process()
        procs = [me, *me.children(recursive=True)]
        rss = private = 0
        for p in procs:
            try:
                m = p.memory_info()
            except psutil.Error:
                continue
            rss += m.rss
            private += m.rss - m.shared
        self.peak, self.peak_private = max(self.peak, rss), max(self.peak_private, private)

    def __enter__(self):
        def loop():
            while not self._stop.is_set():
                self._sample()
                time.sleep(self.every_s)
        self._t = threading.Thread(target=loop, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self._sample()


def old_way_window(paths, field: str, lo: float, hi: float):
    "The users' old loader: open each of the window's files with xarray, coarsen 2x2, normalise."
    import xarray as xr
    frames = []
    for p in paths:
        with xr.open_dataset(p) as ds:
            da = ds[field].isel(time=0)  # xarray decodes _FillValue to NaN, and coarsen's mean skips NaN
            dims = {d: 2 for d in da.dims if d.startswith(("x", "y"))}
            frames.append(da.coarsen(**dims).mean().values)
    x = np.nan_to_num(normalize(np.stack(frames), lo, hi), nan=0.0).astype(np.float32)
    return torch.from_numpy(x)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scans", type=int, default=160, help="scans per event")
    ap.add_argument("--events", type=int, default=2)
    ap.add_argument("--nx", type=int, default=500, help="raw grid is nx x nx")
    ap.add_argument("--nz", type=int, default=18)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--old-windows", type=int, default=3, help="windows timed the old way")
    ap.add_argument("--generator", choices=["auto", "synthetic", "blobs"], default="auto",
                    help="archive generator: nowcast.synthetic.make_archive (auto), or smooth moving blobs")
    ap.add_argument("--work", type=Path, default=None, help="work folder (kept); default a temporary one")
    a = add_output_args(ap).parse_args(argv)
    if a.smoke: vars(a).update(SMOKE)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows up in logs as it happens
    torch.manual_seed(0)
    work = a.work or Path(tempfile.mkdtemp(prefix="bench_data_"))
    work.mkdir(parents=True, exist_ok=True)
    res = {"scale": {"events": a.events, "scans_per_event": a.scans, "nx": a.nx, "nz": a.nz,
                     "pooled": [a.nz, a.nx // 2, a.nx // 2], "n_in": 8, "n_out": 7,
                     "workers": a.workers, "batch": a.batch},
           "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}}
    try:
        raw = work / "raw"
        if not raw.exists():
            t = time.perf_counter()
            gen = "synthetic" if a.generator == "auto" else a.generator
            write = write_synthetic if gen == "synthetic" else write_archive
            n = write(raw, events=a.events, scans=a.scans, nx=a.nx, nz=a.nz)
            res["scale"]["generator"] = gen
            print(f"wrote {n} scans ({gen}) in {time.perf_counter() - t:.1f} s")
        raw_bytes = sum(p.stat().st_size for p in raw.rglob("*.nc"))

        t = time.perf_counter()
        rep = prepare(raw, work / "cache", split={"train": 0.5, "val": 0.5, "test": 0.0} if a.events < 3 else None)
        dt = time.perf_counter() - t
        cache_bytes = sum((work / "cache" / f).stat().st_size for f in ("dbz.u8", "missing.u8"))
        res["prepare"] = {"scans": rep["scans"], "seconds": round(dt, 2), "scans_per_s": round(rep["scans"] / dt, 2),
                          "cache_bytes_per_scan": cache_bytes // rep["scans"],
                          "raw_file_bytes_per_scan": raw_bytes // rep["scans"], "windows": rep["windows"]}
        print(f"prepare: {rep['scans']} scans in {dt:.1f} s = {rep['scans'] / dt:.2f} scans/s; "
              f"cache {cache_bytes / rep['scans'] / 1e6:.2f} MB/scan (raw files {raw_bytes / rep['scans'] / 1e6:.2f} MB/scan)")

        splits = [s for s, k in rep["windows"].items() if k > 0]

        def sweep(as_codes: bool):
            "Every window of every split through the loader; (windows, seconds, peak memory)."
            n, t0 = 0, time.perf_counter()
            with PeakRSS() as mem:
                for split in splits:
                    loader = make_loader(RadarWindows(work / "cache", split, as_codes=as_codes), a.batch, shuffle=True,
                                         num_workers=a.workers, seed=0)
                    for x, y, v in loader:
                        n += x.shape[0]
                    del loader
            return n, time.perf_counter() - t0, mem

        # what training uses: uint8 codes out of the loader, turned into normalised floats on the device
        n_windows, dt, mem = sweep(as_codes=True)
        n_f, dt_f, _ = sweep(as_codes=False)       # the float32 contract, normalised in the workers
        ds_c = RadarWindows(work / "cache", splits[0], as_codes=True)
        xb, yb, _ = next(iter(make_loader(ds_c, a.batch, shuffle=False)))
        t = time.perf_counter()
        for _ in range(3):
            decode_codes(xb, ds_c.table); decode_codes(yb, ds_c.table)
        decode_s = (time.perf_counter() - t) / 3 / xb.shape[0]
        res["loader"] = {"windows": n_windows, "seconds": round(dt, 2), "windows_per_s": round(n_windows / dt, 2),
                         "float32_windows_per_s": round(n_f / dt_f, 2),
                         "decode_on_this_cpu_s_per_window": round(decode_s, 4),
                         "bytes_per_window_codes": int(xb[0].numel() + yb[0].numel()),
                         "peak_rss_mb": round(mem.peak / 2**20, 1), "peak_private_mb": round(mem.peak_private / 2**20, 1),
                         "cache_mb": round(cache_bytes / 2**20, 1)}
        print(f"loader ({a.workers} workers, batch {a.batch}): {n_windows} windows of uint8 codes in {dt:.1f} s = "
              f"{n_windows / dt:.1f} windows/s (float32 in the workers: {n_f / dt_f:.1f} windows/s; decoding codes on this "
              f"CPU {decode_s * 1e3:.1f} ms/window, a table lookup a GPU does in well under a millisecond); "
              f"peak RSS {mem.peak / 2**20:.0f} MB (private {mem.peak_private / 2**20:.0f} MB) for a {cache_bytes / 2**20:.0f} MB cache")

        cache = load_cache(work / "cache")
        ds = RadarWindows(work / "cache", splits[0])
        idx = np.linspace(0, len(ds) - 1, a.old_windows).astype(int)
        t = time.perf_counter()
        for i in idx:
            s = int(ds.starts[i])
            old = old_way_window(cache.source_paths[s:s + 15], "DBZ", -10.0, 70.0)
        dt_old = (time.perf_counter() - t) / len(idx)
        new_x = torch.cat(ds[int(idx[-1])][:2])
        agree = float((old - new_x).abs().max())
        res["old_way"] = {"windows": len(idx), "seconds_per_window": round(dt_old, 3), "windows_per_s": round(1 / dt_old, 3),
                          "max_abs_diff_normalised": round(agree, 4)}
        res["speedup"] = round(res["loader"]["windows_per_s"] * dt_old, 1)
        print(f"old way (xarray open + coarsen of 15 files): {dt_old:.2f} s/window = {1 / dt_old:.2f} windows/s; "
              f"speed-up {res['speedup']}x (goal > 100x); max |old - new| = {agree:.4f} (normalised)")
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)

    out = output_dir(a) / "bench_data"
    with atomic_write(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(res, indent=2))
    p, l, o, s = res["prepare"], res["loader"], res["old_way"], res["scale"]
    md = [f"# Data benchmark ({s['events']} events x {s['scans_per_event']} scans, {s['nx']}x{s['nx']}x{s['nz']} raw, "
          f"{s['nx'] // 2}x{s['nx'] // 2}x{s['nz']} pooled; {res['machine']['cpus']} CPUs)", "",
          "| figure | value |", "|---|---|",
          f"| prepare throughput | {p['scans_per_s']} scans/s ({p['scans']} scans in {p['seconds']} s) |",
          f"| cache bytes per scan | {p['cache_bytes_per_scan']:,} (raw NetCDF {p['raw_file_bytes_per_scan']:,}) |",
          f"| loader throughput, 8+7, {s['workers']} workers, uint8 codes to the device (what training uses) | {l['windows_per_s']} windows/s ({l['windows']} windows) |",
          f"| the same loader normalising to float32 in the workers | {l['float32_windows_per_s']} windows/s |",
          f"| decoding the codes on this CPU (a GPU does it as a table lookup) | {l['decode_on_this_cpu_s_per_window'] * 1e3:.1f} ms/window |",
          f"| old way (xarray open + coarsen, 15 files/window) | {o['windows_per_s']} windows/s ({o['windows']} windows sampled) |",
          f"| speed-up of the codes loader over the old way (goal > 100x) | {res['speedup']}x |",
          f"| peak RSS of loader + workers over the whole archive | {l['peak_rss_mb']} MB (private {l['peak_private_mb']} MB; cache {l['cache_mb']} MB) |",
          f"| max abs difference old vs new (normalised units) | {o['max_abs_diff_normalised']} |", "",
          "Command: `python benchmarks/bench_data.py " + " ".join(sys.argv[1:] if argv is None else argv) + "`"]
    with atomic_write(out.with_suffix(".md")) as tmp:
        tmp.write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
