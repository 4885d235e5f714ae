"""Real-time latency of `nowcast watch`: an archive replayed as a live feed at an accelerated cadence.

    .venv/bin/python benchmarks/bench_watch.py [--scale embedded|full|both] [--scans N] [--interval S]
                                               [--device cpu|cuda] [--trigger events|ldata|poll] [--smoke] [--out-dir DIR]

A writer publishes scans into a temporary folder as LROSE's writers do (a temporary name, then a rename into
`yyyymmdd/hhmmss.nc`; with `--trigger ldata` it also rewrites the folder's `_latest_data_info`, and the service
polls instead of listening to file-system events, as on NFS; `--trigger poll` polls alone), one every
`--interval` seconds, with scan times 5 minutes apart. The service is the real command, `nowcast watch`, in a
process of its own, with a checkpoint saved as the training engine saves it (random weights: speed does not depend
on them). For each forecast it measures the latency from the scan being complete (renamed into place) to the
forecast files and `_latest_data_info` being written, split into detect (until the service knew the scan was
complete), read, pool, model, upsample and write, and reports the median and the 95th percentile, the first
forecast (cold) apart. The feed starts with the `n_in - 1` scans before the replay in place (a radar that has been running), so every
replayed scan can be forecast. The service's memory (RSS of the service and of its reader processes) is read at the start,
after the first forecast and at the end, to show that it stays flat over a long replay.

Scales: `embedded` (params.yaml: the 64x64x8 synthetic grid and its model; default 288 scans, a replayed day, at
1 scan/s) and `full` (params-full.yaml: 500x500x18 scans pooled to 250x250x18, its model; default 30 scans, one
every 5 s). `--scans` and `--interval` shorten or slow a replay. Writes `reports/bench_watch.json` and `.md` (a run
of one scale keeps the other scale's last figures; `--out-dir` for another folder). `--smoke` replays 3 scans at the
embedded scale (seconds).
"""
import argparse, json, os, platform, shutil, signal, subprocess, sys, tempfile, threading, time
from pathlib import Path

import netCDF4
import numpy as np
import psutil
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nowcast.io import TIME_UNITS, Grid, azimuthal_equidistant, write_grid_netcdf  # noqa: E402
from nowcast.train import model_from_params, save_checkpoint  # noqa: E402
from nowcast.watch import write_latest_data_info  # noqa: E402
from _smoke import add_output_args, output_dir  # noqa: E402

CADENCE_S, T0 = 300, np.datetime64("2024-06-01T00:00:00", "s")
SCALES = {  # params file, grid (nz, ny, nx, dx km), default scans and interval
    "embedded": ("params.yaml", None, 288, 1.0),
    "full": ("params-full.yaml", (18, 500, 500, 1.0), 30, 5.0),
}
PARTS = ("detect", "read", "pool", "model", "upsample", "write", "total")


def scale_setup(scale: str, folder: Path) -> tuple[dict, tuple, Path]:
    "The scale's params (written to `folder/params.yaml`), its grid and a checkpoint saved as training saves one."
    name, shape, _, _ = SCALES[scale]
    params = yaml.safe_load((ROOT / name).read_text())
    if shape is None:
        s = params["synthetic"]
        shape = (int(s["nz"]), int(s["ny"]), int(s["nx"]), float(s["dx_km"]))
    pr = params["prepare"]
    torch.manual_seed(0)
    model, cfg = model_from_params(params, shape[0], int(pr["n_in"]), int(pr["n_out"]))
    ckpt = save_checkpoint({"model": model.state_dict(), "model_config": cfg, "params": params, "phase": "phase3",
                            "epoch": 0, "step": 0, "best_val": float("nan")}, folder / "phase3_best.pt")
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    return params, shape, ckpt


def templates(folder: Path, shape: tuple, k: int = 12) -> list[Path]:
    "`k` scans of storm cells moving across the grid (the replay cycles through them, each with a new time)."
    nz, ny, nx, dx = shape
    grid = Grid((np.arange(nx) - nx / 2 + 0.5) * dx, (np.arange(ny) - ny / 2 + 0.5) * dx, 0.5 + np.arange(nz) * 17.0 / nz,
                azimuthal_equidistant(39.87, -104.76))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:ny, :nx].astype(np.float32)
    cells = rng.uniform([0.1 * ny, 0.1 * nx, 0.02 * nx, 35], [0.9 * ny, 0.9 * nx, 0.05 * nx, 62], (12, 4))
    profile = np.exp(-((grid.z_km - 4.0) / 5.0) ** 2).astype(np.float32)[:, None, None]
    out = []
    for i in range(k):
        field = np.full((ny, nx), -10.0, np.float32)
        for cy, cx, r, peak in cells:
            field = np.maximum(field, peak * np.exp(-(((xx - cx - 0.006 * nx * i) ** 2 + (yy - cy - 0.004 * ny * i) ** 2) / r ** 2)) - 5)
        dbz = np.maximum(profile * (field[None] + 10) - 10, -10.0).astype(np.float32)
        out.append(write_grid_netcdf(folder / f"template_{i:02d}.nc", dbz, None, T0, grid, "DBZ",
                                     sensor=(39.87, -104.76, 1.6), time_bounds=(T0 - np.timedelta64(270, "s"), T0)))
    return out


def publish(template: Path, live: Path, t: np.datetime64, ldata: bool) -> tuple[str, float]:
    "Copy a template under a temporary name, give it the scan time, rename it into place; the time it was complete."
    d = t.astype(object)
    rel = f"{d:%Y%m%d}/{d:%H%M%S}.nc"
    dest = live / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.copyfile(template, tmp)
    secs = float((t - np.datetime64(0, "s")).astype(np.int64))
    with netCDF4.Dataset(tmp, "r+") as ds:
        assert ds["time"].units == TIME_UNITS
        ds["time"][:] = secs
        ds["time_bounds"][0] = [secs - 270, secs]
    os.rename(tmp, dest)
    done = time.time()
    if ldata: write_latest_data_info(live, t, rel)  # the radar side's announcement
    return rel, done


class Service:
    "`nowcast watch` in its own process; its JSON log records as they come."
    def __init__(self, cwd: Path, args: list[str]):
        self.records, self.lines = [], []
        self.proc = subprocess.Popen([sys.executable, "-m", "nowcast.cli", "watch", *args, "--log-format", "json"],
                                     cwd=cwd, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            try: self.records.append(json.loads(line))
            except ValueError: pass

    def wait_for(self, pred, timeout_s: float) -> dict | None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            hits = [r for r in self.records if pred(r)]
            if hits: return hits[-1]
            if self.proc.poll() is not None: raise RuntimeError("the service exited:\n" + "".join(self.lines[-30:]))
            time.sleep(0.02)
        return None

    def rss_mb(self) -> dict:
        "RSS of the service process and of its reader processes, MiB."
        p = psutil.Process(self.proc.pid)
        kids = p.children(recursive=True)
        return {"service": round(p.memory_info().rss / 2**20, 1),
                "readers": round(sum(k.memory_info().rss for k in kids) / 2**20, 1), "n_readers": len(kids)}


def stats(values) -> dict:
    v = np.asarray(values, float)
    return {"median": round(float(np.median(v)), 3), "p95": round(float(np.percentile(v, 95)), 3)} if len(v) else {}


def replay(scale: str, n_scans: int, interval: float, device: str, trigger: str) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"bench_watch_{scale}."))
    try:
        t_setup = time.perf_counter()
        params, shape, ckpt = scale_setup(scale, tmp)
        tpl = templates(tmp / "templates", shape)
        setup_s = time.perf_counter() - t_setup
        live, out = tmp / "live", tmp / "forecasts"
        live.mkdir()
        args = ["--input", str(live), "--out", str(out), "--model-path", str(ckpt), "--params", str(tmp / "params.yaml"),
                "--device", device, "--settle-s", "1", "--poll-s", "2"] + (["--events", "poll"] if trigger != "events" else [])
        n_in = int(params["prepare"]["n_in"])
        rels = [publish(tpl[-k], live, T0 - np.timedelta64(k * CADENCE_S, "s"), False)[0] for k in range(n_in - 1, 0, -1)]
        svc = Service(tmp, args)  # the radar has been running: the n_in - 1 scans before the replay are there
        if svc.wait_for(lambda r: r.get("event") == "start", 300) is None: raise RuntimeError("the service did not start")
        if svc.wait_for(lambda r: r.get("event") == "waiting", 60) is None:  # it has taken in the n_in - 1 scans
            raise RuntimeError("the service did not take in the scans already there:\n" + "".join(svc.lines[-30:]))
        rss = {"start": svc.rss_mb()}
        load = {"start": os.getloadavg()[0]}
        published, h = {}, len(rels)
        begin = time.monotonic()
        for i in range(n_scans):
            time.sleep(max(0.0, begin + i * interval - time.monotonic()))
            t = T0 + np.timedelta64(i * CADENCE_S, "s")
            rel, done = publish(tpl[i % len(tpl)], live, t, trigger == "ldata")
            published[f"{t}Z"] = done; rels.append(rel)
            if i == 0:  # after the first forecast: the model has run once, buffers are allocated
                if svc.wait_for(lambda r: r.get("event") == "forecast", 120): rss["first_forecast"] = svc.rss_mb()
            if h + i >= 24: (live / rels[h + i - 24]).unlink()  # the feed keeps two hours, as a radar's disk would
            for old in sorted(out.glob("*/g_*"))[:-3]: shutil.rmtree(old)  # (forecasts the bench no longer needs)
        last = f"{T0 + np.timedelta64((n_scans - 1) * CADENCE_S, 's')}Z"
        svc.wait_for(lambda r: r.get("event") == "forecast" and r["issue_time"] == last, 120)
        rss["end"] = svc.rss_mb()
        load["end"] = os.getloadavg()[0]
        svc.proc.send_signal(signal.SIGTERM)
        rc = svc.proc.wait(timeout=120)
        fcs = [r for r in svc.records if r.get("event") == "forecast"]
        rows = []
        for r in fcs:
            row = {"detect": r["complete_at"] - published[r["issue_time"]], **r["seconds"]}
            row["total"] = r["written_at"] - published[r["issue_time"]]
            rows.append(row)
        steady = rows[1:]
        return {"scale": scale, "grid_zyx": list(shape[:3]), "dx_km": shape[3], "device": device, "trigger": trigger,
                "scans": n_scans, "interval_s": interval, "forecasts": len(fcs),
                "not_forecast": n_scans - len(fcs),
                "model": yaml.safe_load((tmp / "params.yaml").read_text())["model"], "exit_code": rc,
                "first_forecast_s": {k: round(v, 3) for k, v in rows[0].items()} if rows else None,
                "latency_s": {k: stats([row[k] for row in steady]) for k in PARTS},
                "rss_mb": rss, "rss_service_per_forecast_mb": [r["rss_mb"] for r in fcs],
                "load_average_1min": load, "setup_s": round(setup_s, 1), "wall_s": round(time.monotonic() - begin, 1)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = ["# Real-time latency (benchmarks/bench_watch.py)", "",
             "An archive replayed as a live feed into `nowcast watch` (its own process): latency from a scan being "
             "complete (renamed into place) to its forecast files and `_latest_data_info` being written, median / 95th "
             "percentile in seconds, the first (cold) forecast apart. Machine: "
             f"{m['cpu']}, {m['cpus']} CPUs, torch {m['torch']} ({m['torch_threads']} threads), GPU: {m['cuda'] or 'none'}.", "",
             "| scale | grid (z, y, x) | device | trigger | scans, every | forecasts | " + " | ".join(PARTS) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(PARTS)]
    for r in report["runs"].values():
        cells = [f"{r['latency_s'][k]['median']} / {r['latency_s'][k]['p95']}" if r["latency_s"][k] else "-" for k in PARTS]
        lines.append(f"| {r['scale']} | {' x '.join(map(str, r['grid_zyx']))} | {r['device']} | {r['trigger']} | {r['scans']}, "
                     f"{r['interval_s']:g} s | {r['forecasts']} | " + " | ".join(cells) + " |")
    lines += ["", "| scale | RSS start (MiB) | after the 1st forecast | end | readers start / end | first forecast total (s) | load avg start / end |",
              "|---|---|---|---|---|---|---|"]
    for r in report["runs"].values():
        s, f, e = r["rss_mb"]["start"], r["rss_mb"].get("first_forecast", {}), r["rss_mb"]["end"]
        lines.append(f"| {r['scale']}, every {r['interval_s']:g} s, {r['trigger']} | {s['service']} | {f.get('service', '-')} | {e['service']} | "
                     f"{s['readers']} / {e['readers']} | {(r['first_forecast_s'] or {}).get('total', '-')} | "
                     f"{r['load_average_1min']['start']:.1f} / {r['load_average_1min']['end']:.1f} |")
    lines += ["", "Goal at full scale: 95th percentile of the total under 10 s on this CPU, under 1 s on a GPU. The "
              "feed starts with the `n_in - 1` scans before the replay in place; a scan not forecast was passed over "
              "because a newer one was complete when the service was free (the feed came faster than the forecasts), "
              "and then `detect` includes the wait for the forecast in progress.", ""]
    for r in report["runs"].values():
        lines.append(f"- {r['scale']}: {r['scans']} scans replayed one every {r['interval_s']:g} s "
                     f"({r['wall_s']} s), trigger {r['trigger']}, {r['forecasts']} forecasts, "
                     f"{r['not_forecast']} passed over for a newer one, "
                     f"service exit code {r['exit_code']} after SIGTERM; model {r['model']}"
                     + (f"; `{r['command']}`." if r.get("command") else "."))
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", choices=("embedded", "full", "both"), default="both")
    ap.add_argument("--scans", type=int, default=None, help="scans to replay (default: 288 embedded, 30 full)")
    ap.add_argument("--interval", type=float, default=None, help="seconds between scans (default: 1 embedded, 5 full)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--trigger", choices=("events", "ldata", "poll"), default="events",
                    help="how the service learns of scans: rename events (inotify); polling and the radar's "
                         "_latest_data_info; polling alone (--events poll: complete once unchanged for 1 s)")
    args = add_output_args(ap).parse_args()
    if args.smoke: args.scale, args.scans, args.interval = "embedded", 3, 1.0
    out = output_dir(args)
    report_path = out / "bench_watch.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {"runs": {}}
    for scale in (("embedded", "full") if args.scale == "both" else (args.scale,)):
        _, _, n, interval = SCALES[scale]
        run = replay(scale, args.scans or n, args.interval or interval, args.device, args.trigger)
        run["command"] = " ".join(["python benchmarks/bench_watch.py", "--scale", scale, "--scans", str(run["scans"]),
                                   "--interval", f"{run['interval_s']:g}", "--device", args.device, "--trigger", args.trigger])
        report["runs"][f"{scale} {args.device} every {run['interval_s']:g} s, {args.trigger}"] = run
        print(json.dumps({k: run[k] for k in ("scale", "device", "scans", "forecasts", "latency_s", "rss_mb")}, indent=1))
    report["machine"] = {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                         "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                         "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    report_path.write_text(json.dumps(report, indent=1))
    (out / "bench_watch.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
