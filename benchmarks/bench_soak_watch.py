"""Soak: a day of scans through `nowcast watch` while the faults of a live machine come and go.

    .venv/bin/python benchmarks/bench_soak_watch.py [--scans 288] [--interval 2] [--smoke] [--out-dir DIR]

A radar side publishes scans into a live folder (a temporary name, then a rename into `yyyymmdd/hhmmss.nc`), one every
`--interval` seconds with scan times 5 minutes apart (a replayed day at the embedded scale: params.yaml's grid and
model, random weights), the day turning at midnight half way. `nowcast watch` is the real command in a process of its
own, under a supervisor that restarts it when it exits (as systemd's Restart=on-failure does), on libfaketime's clock
(the `libfaketime` package's library in LD_PRELOAD, its offset read from a file every second). Its forecast folder
is a tmpfs of its own (mounted here: root). A reader polls the forecast folder as TITAN does, every 10 ms, and counts
every forecast group it sees with some of its leads missing, and every `_latest_data_info` naming a file not there.

Faults, one at a time, each well after the one before (real means only, no mock of the file system):
disk_full (the tmpfs filled to the last byte, then freed), out_readonly (remounted read-only, then read-write),
out_removed (the forecast folder removed), input_rotated (the scan folder moved away and created again),
day_late (the new day's folder appears only with its first scan in it), scan_ahead (a scan stamped 6 h ahead),
scan_past (a scan 2 days old), clock_back / clock_forward (the service's clock stepped back 2 h, then forward),
checkpoint_replaced (new weights renamed onto the checkpoint), checkpoint_corrupt (a file that does not load, then
good weights again), slow_input (the radar's `_latest_data_info.xml` a FIFO: reads hang until it is written) and
kill9 (SIGKILL during the run; the supervisor restarts the service).

Expected: a forecast for every scan published while no fault was active, i.e. for the first scan after each fault
cleared and every scan after it. Writes `soak_watch.json` and `.md` to reports/ (or `--out-dir`); `--smoke` runs
a few faults on a tiny grid in well under a minute and writes only to `--out-dir` or a temporary folder.
"""
import argparse, contextlib, json, os, platform, shutil, signal, subprocess, sys, tempfile, threading, time
from pathlib import Path

import numpy as np
import psutil
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)), sys.path.insert(0, str(ROOT / "benchmarks"))

from _smoke import add_output_args, output_dir  # noqa: E402
from nowcast.predict import demo_scans  # noqa: E402
from nowcast.watch import STATUS, read_latest_data_info  # noqa: E402

CADENCE_S = 300
NAMED_WITHOUT_A_SCAN = {"input:ENOENT", "input:slow", "clock:step_back", "clock:step_forward", "checkpoint:reloaded",
                        "checkpoint:unreadable", "clock:scan_ahead", "scan:late"}
FULL_FAULTS = ["disk_full", "input_rotated", "clock_back", "day_late", "out_readonly", "scan_ahead", "kill9",
               "checkpoint_replaced", "out_removed", "slow_input", "scan_past", "checkpoint_corrupt", "clock_forward"]
SMOKE_FAULTS = ["disk_full", "input_rotated", "clock_back", "kill9"]


def faketime_env(clock_file: Path) -> dict:
    "The environment that puts a process on libfaketime's clock, its offset read from `clock_file` every second (at every call, torch runs 100 times slower)."
    import libfaketime
    lib = Path(libfaketime.__file__).parent / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
    return {"LD_PRELOAD": str(lib), "FAKETIME_TIMESTAMP_FILE": str(clock_file), "FAKETIME_CACHE_DURATION": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_FORCE_MONOTONIC_FIX": "0"}  # (with the fix, a thread waiting on an event wakes only at its timeout)


def checkpoint(params: dict, nz: int, path: Path, seed: int) -> Path:
    "A checkpoint of params' model (random weights, `seed`), saved as training saves one."
    from nowcast.train import model_from_params, save_checkpoint
    pr = params["prepare"]
    torch.manual_seed(seed)
    model, cfg = model_from_params(params, nz, int(pr["n_in"]), int(pr["n_out"]))
    return save_checkpoint({"model": model.state_dict(), "model_config": cfg, "params": params, "phase": "phase3",
                            "epoch": 0, "step": 0, "best_val": float("nan")}, path)


def setup(smoke: bool, folder: Path) -> tuple[dict, tuple, Path]:
    "params (written to folder/params.yaml), the grid (nz, ny, nx) and a checkpoint."
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if smoke:  # a tiny model and grid, as in the tests
        params["model"] = {"name": "ConvLSTM3D_Enhanced", "hidden": [4, 4], "kernel": 3, "groups": 1, "downsample": [1, 1]}
        params["prepare"].update(n_in=4, n_out=3)
        shape = (2, 16, 16)
    else:
        s = params["synthetic"]
        shape = (int(s["nz"]), int(s["ny"]), int(s["nx"]))
    params.setdefault("data", {})["read_timeout_s"] = 3.0  # a hung read is named after 3 s
    params.setdefault("train", {})["device"] = "cpu"
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    return params, shape, checkpoint(params, shape[0], folder / "phase3_best.pt", 0)


class Service:
    "`nowcast watch` under a supervisor: restarted when it exits (Restart=on-failure); every run's JSON records kept."
    def __init__(self, cwd: Path, args: list[str], env: dict):
        self.cwd, self.args, self.env = cwd, args, env
        self.records, self.lines, self.runs, self.crashes, self.restarts = [], [], [], 0, 0
        self.killed, self.stopping = False, False
        self._start()
        threading.Thread(target=self._supervise, daemon=True).start()

    def _start(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "nowcast.cli", "watch", *self.args, "--log-format", "json"],
                                     cwd=self.cwd, stderr=subprocess.PIPE, text=True, env=self.env)
        self.runs.append({"pid": self.proc.pid, "rss_mb": []})
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()

    def _read(self, proc):
        for line in proc.stderr:
            self.lines.append(line)
            try: self.records.append({**json.loads(line), "_pid": proc.pid, "_t": time.monotonic()})
            except ValueError: pass

    def _supervise(self):
        while not self.stopping:
            rc = self.proc.wait()
            if self.stopping: return
            if not self.killed:
                self.crashes += 1
                self.lines.append(f"*** the service exited with code {rc} (a crash)\n")
            self.killed = False
            self.restarts += 1
            time.sleep(0.5)  # systemd's RestartSec
            self._start()

    def kill9(self):
        self.killed = True
        self.proc.send_signal(signal.SIGKILL)

    def wait_for(self, pred, timeout_s: float) -> dict | None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            hits = [r for r in self.records if pred(r)]
            if hits: return hits[-1]
            time.sleep(0.02)
        return None

    def rss_mb(self) -> float | None:
        try: return round(psutil.Process(self.proc.pid).memory_info().rss / 2**20, 1)
        except psutil.Error: return None

    def stop(self) -> int:
        self.stopping = True
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=120)


class Titan(threading.Thread):
    "A reader polling the forecast folder as TITAN does: each group it sees must hold all `n_out` leads."
    def __init__(self, out: Path, n_out: int):
        super().__init__(daemon=True)
        self.out, self.n_out, self.halt = out, n_out, threading.Event()
        self.partial, self.groups, self.ldata_broken, self.polls = [], set(), 0, 0
        self.start()

    def run(self):
        while not self.halt.is_set():
            self.polls += 1
            for group in self.out.glob("[0-9]*/g_*"):
                try: names = [p.name for p in group.iterdir()]
                except OSError: continue
                if len([n for n in names if n.startswith("f_") and n.endswith(".nc")]) != self.n_out or len(names) != self.n_out:
                    self.partial.append((str(group.relative_to(self.out)), sorted(names)))
                self.groups.add(str(group.relative_to(self.out)))
            info = read_latest_data_info(self.out)
            if info is not None and not (self.out / info["rel_data_path"]).is_file() and self.out.is_dir():
                self.ldata_broken += 1  # (a group the harness has since rotated away would count: it keeps 12)
            time.sleep(0.01)


class Harness:
    "The radar side, the clock, the disks and the faults."
    def __init__(self, tmp: Path, shape: tuple, n_in: int, n_scans: int, params: dict, ckpt: Path):
        self.tmp, self.shape, self.n_in, self.params, self.ckpt = tmp, shape, n_in, params, ckpt
        self.live, self.disk = tmp / "live", tmp / "disk"
        self.out = self.disk / "forecasts"
        self.clock = tmp / "clock"
        self.clock.write_text("+0\n")
        self.live.mkdir(); self.disk.mkdir()
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(self.disk)], capture_output=True, text=True)
        if res.returncode: raise SystemExit(f"mounting a tmpfs for the forecast folder needs root: {res.stderr.strip()}")
        day = np.datetime64(int(time.time()) // 86400 * 86400 - 86400, "s")  # yesterday's midnight: every scan is past
        self.t0 = day - np.timedelta64((n_scans // 2) * CADENCE_S, "s")  # the day turns half way
        self.published, self.rels = [], []

    def scan_time(self, k: int) -> np.datetime64:
        return self.t0 + np.timedelta64(k * CADENCE_S, "s")

    def make_scan(self, t: np.datetime64) -> Path:
        nz, ny, nx = self.shape
        return demo_scans(self.tmp / "staged" / str(t).replace(":", ""), n=1, ny=ny, nx=nx, nz=nz, start=str(t))[0]

    def publish(self, k: int, late_day: bool = False, rotate: bool = True):
        "Scan k into the live folder (a temporary name, then a rename); `late_day`: its day folder appears with it."
        t = self.scan_time(k)
        src = self.make_scan(t)
        rel = f"{src.parent.name}/{src.name}"
        dest = self.live / rel
        if late_day:
            staged = self.tmp / "staged_day" / src.parent.name
            staged.mkdir(parents=True)
            shutil.copyfile(src, staged / src.name)
            os.rename(staged, dest.parent)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp")
            shutil.copyfile(src, tmp)
            os.rename(tmp, dest)
        shutil.rmtree(src.parent.parent, ignore_errors=True)
        self.published.append((k, f"{t}Z", time.monotonic()))
        self.rels.append(rel)
        if not rotate: return  # (while a fault is on: freeing space would end a full disk)
        if len(self.rels) > 24:  # the radar's disk keeps two hours
            with_old = self.live / self.rels[-25]
            with_old.unlink(missing_ok=True)
        for old in sorted(self.out.glob("[0-9]*/g_*"))[:-12]:  # TITAN's side keeps an hour of forecasts: a group
            with contextlib.suppress(OSError):                 # goes away whole (hidden first), as it came
                hidden = old.parent / f".{old.name}.rotated"
                os.rename(old, hidden)
                shutil.rmtree(hidden, ignore_errors=True)

    def fill_disk(self) -> Path:
        filler = self.disk / "filler"
        with open(filler, "wb") as f:
            try:
                while True: f.write(b"\0" * (1 << 20)); f.flush()
            except OSError: pass
        return filler

    def remount(self, mode: str):
        "Remount the forecast disk (retried while a write in progress keeps it busy)."
        for _ in range(100):
            if subprocess.run(["mount", "-o", f"remount,{mode}", str(self.disk)], capture_output=True).returncode == 0: return
            time.sleep(0.05)
        raise RuntimeError(f"could not remount {self.disk} {mode}")

    def umount(self):
        subprocess.run(["umount", "-l", str(self.disk)], capture_output=True)


def faults(h: Harness, svc: Service, seed_box: list) -> dict:
    "Each fault: (inject, clear, scans published while it is active, the kind the service must name)."
    def ckpt(seed=None, junk=False):
        tmp = h.tmp / ".ckpt.tmp"
        if junk: tmp.write_bytes(b"not a checkpoint")
        else: seed_box[0] += 1; checkpoint(h.params, h.shape[0], tmp, seed_box[0])
        os.rename(tmp, h.ckpt)

    def fifo_on():
        os.mkfifo(h.live / "_latest_data_info.xml")

    def fifo_off():  # the server answers: open both ends (never blocks), unlink, write, close: the hung read returns
        fd = os.open(h.live / "_latest_data_info.xml", os.O_RDWR | os.O_NONBLOCK)
        os.unlink(h.live / "_latest_data_info.xml")
        os.write(fd, b"<latest_data_info>\n</latest_data_info>\n"); os.close(fd)

    state = {}
    return {
        "disk_full": (lambda: state.update(filler=h.fill_disk()), lambda: state["filler"].unlink(), 2, "out:ENOSPC"),
        "out_readonly": (lambda: h.remount("ro"), lambda: h.remount("rw"), 2, "out:EROFS"),
        "out_removed": (lambda: shutil.rmtree(h.out, ignore_errors=True), lambda: None, 1, "out:ENOENT"),
        "input_rotated": (lambda: shutil.move(h.live, h.tmp / f"live.rotated.{time.time_ns()}"),
                          lambda: h.live.mkdir(exist_ok=True), 1, "input:ENOENT"),
        "day_late": (None, None, 0, None),  # handled by the feed: the new day's folder appears with its first scan
        "scan_ahead": (lambda: state.update(ahead=_publish_at(h, np.datetime64(int(time.time()), "s") + np.timedelta64(6 * 3600, "s"))),
                       lambda: state["ahead"].unlink(), 1, "clock:scan_ahead"),  # (then the radar side removes it)
        "scan_past": (lambda: _publish_at(h, h.scan_time(0) - np.timedelta64(2 * 86400, "s"), flat=True), lambda: None, 0,
                      "scan:late"),
        "clock_back": (lambda: h.clock.write_text("-2h\n"), lambda: None, 1, "clock:step_back"),
        "clock_forward": (lambda: h.clock.write_text("+0\n"), lambda: None, 1, "clock:step_forward"),
        "checkpoint_replaced": (lambda: ckpt(), lambda: None, 1, "checkpoint:reloaded"),
        "checkpoint_corrupt": (lambda: ckpt(junk=True), lambda: ckpt(), 2, "checkpoint:unreadable"),
        "slow_input": (fifo_on, fifo_off, 2, "input:slow"),
        # cleared when the restarted service is back: its first forecast (a model load and a look at the folder later)
        "kill9": (svc.kill9, lambda: svc.wait_for(lambda r: r.get("event") == "forecast" and r["_pid"] == svc.proc.pid and
                                                  r["_pid"] != svc.runs[0]["pid"], 120), 0, "restart"),
    }


def _publish_at(h: Harness, t: np.datetime64, flat: bool = False):
    src = h.make_scan(t)
    d = str(t)
    name = f"radar_{d[:10].replace('-', '')}_{d[11:19].replace(':', '')}.nc" if flat else f"{src.parent.name}/{src.name}"
    dest = h.live / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest.with_name(f".{dest.name}.tmp"))
    os.rename(dest.with_name(f".{dest.name}.tmp"), dest)
    return dest


def soak(n_scans: int, interval: float, smoke: bool, fault_names: list[str]) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="soak_watch."))
    h = svc = None
    try:
        params, shape, ckpt = setup(smoke, tmp)
        n_in, n_out = int(params["prepare"]["n_in"]), int(params["prepare"]["n_out"])
        h = Harness(tmp, shape, n_in, n_scans, params, ckpt)
        # one torch thread: on a machine whose cores other jobs keep busy, two OpenMP threads stall for ~0.7 s now and
        # then waiting for each other, and scans would be passed over for the load, not for a fault
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **faketime_env(h.clock)}
        args = ["--input", str(h.live), "--out", str(h.out), "--model-path", str(ckpt), "--params", str(tmp / "params.yaml"),
                "--device", "cpu", "--settle-s", "0.5", "--poll-s", "0.5", "--status-every-s", "5"]
        for k in range(-(n_in - 1), 0): h.publish(k)  # the radar has been running
        svc = Service(tmp, args, env)
        if svc.wait_for(lambda r: r.get("event") == "start", 300) is None:
            raise RuntimeError("the service did not start:\n" + "".join(svc.lines[-30:]))
        svc.wait_for(lambda r: r.get("event") == "waiting", 60)
        titan = Titan(h.out, n_out)
        rss_start = svc.rss_mb()
        table = faults(h, svc, [0])
        gap = n_in + 3 if smoke else max(2 * n_in, (n_scans - 8) // (len(fault_names) + 1))
        at = {gap * (i + 1): name for i, name in enumerate(fault_names)}
        midnight = n_scans // 2
        active, expected_from, log = None, 0, []
        begin = time.monotonic()
        for k in range(n_scans):
            time.sleep(max(0.0, begin + k * interval - time.monotonic()))
            if k in at and at[k] != "day_late":
                name = at[k]
                inject, clear, dur, kind = table[name]
                t_inject = time.monotonic()
                inject()
                if kind in NAMED_WITHOUT_A_SCAN:  # the service notices it by itself: let it, before the next scan
                    svc.wait_for(lambda r: r.get("kind") == kind and r["_t"] > t_inject, 20)
                begin += time.monotonic() - t_inject  # the feed's schedule waits too (no burst of scans after it)
                active = {"name": name, "kind": kind, "from": k, "until": k + dur, "clear": clear}
            h.publish(k, late_day=(k == midnight), rotate=active is None)
            if active is not None and k + 1 >= active["until"]:
                t_clear = time.monotonic()
                active["clear"]()
                begin += time.monotonic() - t_clear
                log.append({"fault": active["name"], "kind": active["kind"], "scan_injected": active["from"],
                            "first_scan_after": k + 1})
                expected_from = max(expected_from, k + 1)
                active = None
        last = f"{h.scan_time(n_scans - 1)}Z"
        svc.wait_for(lambda r: r.get("event") == "forecast" and r["issue_time"] == last, 120)
        time.sleep(1)
        rss_end = svc.rss_mb()
        status = json.loads((h.out / STATUS).read_text())
        rc = svc.stop()
        titan.halt.set(); titan.join(5)

        made = {r["issue_time"] for r in svc.records if r.get("event") == "forecast"}
        fault_ks = set()
        for f in log: fault_ks |= set(range(f["scan_injected"], f["first_scan_after"]))
        expected = [iso for (k, iso, _) in h.published if k >= 0 and k not in fault_ks]
        missing = [iso for iso in expected if iso not in made]
        named = {}
        for r in svc.records:
            if r.get("event") in ("fault", "note", "refused", "error"):
                key = r.get("kind") if r.get("event") != "refused" else f"scan:{r['kind']}"
                named[key] = named.get(key, 0) + 1
        for f in log:
            first = f"{h.scan_time(f['first_scan_after'])}Z" if f["first_scan_after"] < n_scans else None
            f["first_after_forecast"] = first in made if first else None
            f["named"] = f["kind"] == "restart" or f["kind"] in named
        fcs = [r for r in svc.records if r.get("event") == "forecast"]
        lat = [r["latency_s"] for r in fcs]
        parts = {k: round(float(np.median([r["seconds"][k] for r in fcs])), 3) for k in fcs[0]["seconds"]} if fcs else {}
        return {"scans": n_scans, "interval_s": interval, "grid_zyx": list(shape), "n_in": n_in, "n_out": n_out,
                "model": params["model"]["name"], "faults": log, "forecasts_expected": len(expected),
                "forecasts_made": len(made), "forecasts_made_of_expected": len(expected) - len(missing),
                "missing_after_cleared": missing, "partial_seen": len(titan.partial), "partial_examples": titan.partial[:5],
                "reader_polls": titan.polls, "groups_seen": len(titan.groups), "ldata_naming_missing_file": titan.ldata_broken,
                "crashes": svc.crashes, "restarts": svc.restarts, "exit_code": rc, "errors_named": named,
                "status_errors_last_run": status.get("errors"),
                "latency_s": {"median": round(float(np.median(lat)), 3), "p95": round(float(np.percentile(lat, 95)), 3),
                                                                        "parts_median": parts} if lat else {},
                "rss_mb": {"start": rss_start, "end": rss_end}, "wall_s": round(time.monotonic() - begin, 1),
                "log": list(svc.lines)}
    finally:
        if svc is not None and svc.proc.poll() is None:  # (an error in the harness: no service left behind)
            svc.stopping = True; svc.proc.kill(); svc.proc.wait(30)
        if h is not None: h.umount()
        shutil.rmtree(tmp, ignore_errors=True)


def markdown(r: dict, command: str) -> str:
    m = r["machine"]
    lines = ["# Soak of the live service (benchmarks/bench_soak_watch.py)", "",
             f"Command: `{command}`", "",
             f"{r['scans']} scans (a replayed day, scan times 5 min apart, one every {r['interval_s']:g} s; grid "
             f"{' x '.join(map(str, r['grid_zyx']))}, {r['model']}, n_in {r['n_in']}, {r['n_out']} leads) fed to "
             "`nowcast watch` under a supervisor that restarts it when it exits, on libfaketime's clock, its forecast "
             "folder on a 48 MiB tmpfs, while the faults below came and went; a reader polled the forecast folder every "
             f"10 ms as TITAN does ({r['reader_polls']} polls). Machine: {m['cpu']}, {m['cpus']} CPUs, torch {m['torch']}.", "",
             "| figure | value |", "|---|---|",
             f"| scans fed | {r['scans']} |",
             f"| forecasts expected (every scan fed while no fault was active) | {r['forecasts_expected']} |",
             f"| forecasts made (all) | {r['forecasts_made']} |",
             f"| expected forecasts made | {r['forecasts_made_of_expected']} |",
             f"| partial forecasts the reader saw | {r['partial_seen']} |",
             f"| `_latest_data_info` naming a missing file | {r['ldata_naming_missing_file']} |",
             f"| crashes (exits the harness did not cause) | {r['crashes']} |",
             f"| restarts (after the kill -9) | {r['restarts']} |",
             f"| exit code after SIGTERM | {r['exit_code']} |",
             f"| latency median / p95 (s) | {r['latency_s'].get('median')} / {r['latency_s'].get('p95')} |",
             f"| service RSS at the start / the end (MiB) | {r['rss_mb']['start']} / {r['rss_mb']['end']} |",
             f"| wall time (s) | {r['wall_s']} |", "",
             "| fault | injected before scan | scans during it | named as | named | forecast for the first scan after it |",
             "|---|---|---|---|---|---|"]
    for f in r["faults"]:
        lines.append(f"| {f['fault']} | {f['scan_injected']} | {f['first_scan_after'] - f['scan_injected']} | `{f['kind']}` | "
                     f"{'yes' if f['named'] else 'NO'} | {'yes' if f['first_after_forecast'] else ('-' if f['first_after_forecast'] is None else 'NO')} |")
    lines += ["", "Errors by kind (log lines of every run of the service; a fault is counted once per episode): " +
              ", ".join(f"`{k}` {v}" for k, v in sorted(r["errors_named"].items())) + ".", ""]
    if r["missing_after_cleared"]: lines += [f"Expected but not made: {', '.join(r['missing_after_cleared'])}.", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scans", type=int, default=None, help="scans to replay (default 288; --smoke 34)")
    ap.add_argument("--interval", type=float, default=None, help="seconds between scans (default 2; --smoke 1)")
    ap.add_argument("--keep-log", action="store_true", help="also write the service's log lines (soak_watch.log)")
    add_output_args(ap)
    args = ap.parse_args()
    n = args.scans or (34 if args.smoke else 288)
    names = SMOKE_FAULTS if args.smoke else FULL_FAULTS
    report = soak(n, args.interval or (1.0 if args.smoke else 2.0), args.smoke, names)
    report["machine"] = {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__}
    out = output_dir(args)
    command = "sudo .venv/bin/python benchmarks/bench_soak_watch.py" + (" --smoke" if args.smoke else "") + \
              (f" --scans {args.scans}" if args.scans else "") + (f" --interval {args.interval:g}" if args.interval else "")
    log = report.pop("log")
    if args.keep_log or args.smoke: (out / "soak_watch.log").write_text("".join(log))  # the service's lines, every run
    (out / "soak_watch.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "soak_watch.md").write_text(markdown(report, command))
    print(markdown(report, command))
    ok = report["crashes"] == 0 and report["partial_seen"] == 0 and not report["missing_after_cleared"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
