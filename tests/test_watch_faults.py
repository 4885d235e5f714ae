"""`nowcast watch` under the faults of a live machine, through its own command (a subprocess), with real means only:
a small tmpfs filled up, remounted read-only and its forecast folder removed (the output disk); the scan folder
removed and created again, a day folder appearing late, a FIFO as the radar's `_latest_data_info` (a read that hangs,
as on a dead NFS server), the checkpoint replaced on disk; libfaketime (the `libfaketime` package's library, in
LD_PRELOAD) for scans ahead of the clock and the clock stepping back and forward; `kill -9` and a restart.

For each fault: one log line naming it, no crash, a count in the status file, and a forecast for the next scan once
it has cleared. A reader polls the forecast folder as TITAN would and must never see a group with some leads only.
Mounting a tmpfs needs root (CI runs as root); tiny grids, CPU, ~1.5 min in all."""
import json, os, shutil, signal, subprocess, sys, threading, time
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import torch
import yaml

from nowcast.predict import demo_scans

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_watch import N_IN, N_OUT, NX, NY, NZ, PARAMS, ROOT  # noqa: E402
from test_watch import Service as _Service  # noqa: E402

_running: list = []


class Service(_Service):
    "`nowcast watch` in a subprocess, ended by the test's teardown if the test failed before stopping it."
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _running.append(self.proc)


@pytest.fixture(autouse=True)
def _no_service_left():
    yield
    while _running:
        proc = _running.pop()
        if proc.poll() is None: proc.kill(); proc.wait(30)

LEADS = [f"f_{s:08d}.nc" for s in (300, 600, 900)]


def _checkpoint(path: Path, seed: int) -> Path:
    "A checkpoint following the training contract (random weights, `seed`)."
    from nowcast.models import get_model
    torch.manual_seed(seed)
    kwargs = dict(n_levels=NZ, n_in=N_IN, n_out=N_OUT, hidden=[4, 4], groups=1)
    torch.save({"model": get_model("ConvLSTM3D_Enhanced", **kwargs).state_dict(),
                "model_config": {"name": "ConvLSTM3D_Enhanced", "kwargs": kwargs}, "params": PARAMS}, path)
    return path


def _iso(t: np.datetime64) -> str:
    return f"{np.datetime64(t, 's')}Z"


class Feed:
    "A radar side: scans of any time, written under a temporary name and renamed into `<live>/yyyymmdd/hhmmss.nc`."
    def __init__(self, live: Path, staging: Path):
        self.live, self.staging = live, staging

    def scan(self, t: np.datetime64) -> Path:
        "A scan of time `t` in the staging folder."
        return demo_scans(self.staging / str(t).replace(":", ""), n=1, ny=NY, nx=NX, nz=NZ, start=str(t))[0]

    def publish(self, t: np.datetime64, name: str | None = None) -> Path:
        src = self.scan(t)
        dest = self.live / (name or f"{src.parent.name}/{src.name}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(src, tmp)
        os.rename(tmp, dest)
        return dest


class Titan(threading.Thread):
    "A reader polling the forecast folder as TITAN does: every group it sees must hold all its leads."
    def __init__(self, out: Path):
        super().__init__(daemon=True)
        self.out, self.partial, self.seen, self.halt = out, [], set(), threading.Event()
        self.look = threading.Lock()  # held for each look at the folder; a test that removes the folder itself holds it
        self.start()

    def run(self):
        while not self.halt.is_set():
            with self.look:
                for group in self.out.glob("[0-9]*/g_*"):
                    try: names = sorted(p.name for p in group.iterdir())
                    except OSError: continue  # the folder removed under us (a fault the test injects)
                    if names != LEADS: self.partial.append((str(group), names))
                    self.seen.add(group.name)
            time.sleep(0.01)

    def stop(self) -> list:
        self.halt.set(); self.join(10)
        return self.partial


def _status(out: Path) -> tuple[int, str]:
    res = subprocess.run([sys.executable, "-m", "nowcast.cli", "watch", "--status", str(out)], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    return res.returncode, res.stdout + res.stderr


def _fault(svc: Service, kind: str, timeout_s: float = 30) -> dict:
    return svc.wait_for(lambda r: r.get("event") == "fault" and r["kind"] == kind, timeout_s)


@pytest.fixture()
def tmpfs(tmp_path):
    "A 4 MiB tmpfs (root: CI runs as root), unmounted at the end."
    disk = tmp_path / "disk"
    disk.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True, text=True)
    assert res.returncode == 0, f"mounting a tmpfs needs root (CI runs as root): {res.stderr}"
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _remount(disk: Path, mode: str):
    "Remount the tmpfs read-only or read-write (retried while a write in progress keeps it busy)."
    for _ in range(50):
        if subprocess.run(["mount", "-o", f"remount,{mode}", str(disk)], capture_output=True).returncode == 0: return
        time.sleep(0.1)
    raise AssertionError(f"could not remount {disk} {mode}")


def _fill(disk: Path) -> Path:
    "Fill the disk to the last byte with a file of the test's own."
    filler = disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True: f.write(b"\0" * 65536); f.flush()
        except OSError: pass
    return filler


def _started(tmp_path, out, start, settle_s):
    "A service on `tmp_path/live` writing to `out`, TITAN's reader on `out`, and the first forecast made (scans 5 min apart from `start`)."
    ckpt = _checkpoint(tmp_path / "phase3_best.pt", 0)
    feed = Feed(tmp_path / "live", tmp_path / "staged")
    t = lambda k: np.datetime64(start, "s") + np.timedelta64(300 * k, "s")
    for k in range(N_IN - 1): feed.publish(t(k))
    svc = Service(tmp_path, "--input", str(tmp_path / "live"), "--out", str(out), "--model-path", str(ckpt), "--device", "cpu",
                  "--settle-s", str(settle_s), "--poll-s", "0.2", "--status-every-s", "1")
    titan = Titan(out)
    feed.publish(t(3)); svc.forecast(_iso(t(3)))
    return feed, svc, titan, t


def test_output_disk_full_readonly_removed(tmp_path, tmpfs):
    "ENOSPC, EROFS and the forecast folder removed: named, counted, and a forecast for the next scan each time."
    out = tmpfs / "forecasts"
    feed, svc, titan, t = _started(tmp_path, out, "2024-06-01T12:00:00", settle_s=3)
    assert _status(out)[0] == 0

    filler = _fill(tmpfs)
    feed.publish(t(4))
    full = _fault(svc, "out:ENOSPC")
    assert "No space left on device" in full["message"] and str(out) in full["message"], full
    code, text = _status(out)
    assert code == 1 and "out:ENOSPC" in text, text
    filler.unlink()
    svc.forecast(_iso(t(4)))  # kept, and written once the disk takes it
    feed.publish(t(5)); svc.forecast(_iso(t(5)))

    _remount(tmpfs, "ro")
    feed.publish(t(6))
    ro = _fault(svc, "out:EROFS")
    assert "Read-only file system" in ro["message"], ro
    _remount(tmpfs, "rw")
    feed.publish(t(7)); svc.forecast(_iso(t(7)))

    with titan.look:  # the test's own rmtree empties a group before removing it: not a forecast the service wrote
        shutil.rmtree(out)
    feed.publish(t(8))
    gone = _fault(svc, "out:ENOENT")
    assert str(out) in gone["message"]
    svc.forecast(_iso(t(8)))  # in the folder created again
    assert (out / "20240601" / "g_124000").is_dir() and (out / "_nowcast_watch.lock").is_file()
    time.sleep(1.5)
    code, text = _status(out)
    assert code == 0, text
    status = json.loads((out / "_nowcast_watch_status.json").read_text())
    assert status["errors"] == {"out:ENOSPC": 1, "out:EROFS": 1, "out:ENOENT": 1}, status
    assert svc.terminate() == 0, "".join(svc.lines)
    assert titan.stop() == [], "TITAN saw a forecast with some leads only"
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]
    assert not svc.of("error") and svc.proc.returncode == 0
    assert _status(out)[0] == 2  # stopped


def test_input_rotated_late_day_slow_and_checkpoint_replaced(tmp_path):
    "The scan folder removed and made again, a day folder appearing late, a hung read, the checkpoint replaced."
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"read_timeout_s": 2}}))
    live, out = tmp_path / "live", tmp_path / "forecasts"
    feed, svc, titan, t = _started(tmp_path, out, "2024-06-01T23:40:00", settle_s=1)
    ckpt = tmp_path / "phase3_best.pt"

    # a day folder appearing late: 2024-06-02 arrives as a whole folder, its first scan already in it
    day = tmp_path / "staged_day" / "20240602"
    day.mkdir(parents=True)
    shutil.copyfile(feed.scan(t(4)), day / "000000.nc")
    os.rename(day, live / "20240602")
    svc.forecast(_iso(t(4)))

    # the scan folder removed (the radar side rotates it), then created again: the window goes on from memory
    shutil.rmtree(live)
    gone = _fault(svc, "input:ENOENT")
    assert str(live) in gone["message"]
    live.mkdir()
    feed.publish(t(5)); svc.forecast(_iso(t(5)))

    # the checkpoint replaced on disk (renamed into place): loaded between two forecasts
    new = _checkpoint(tmp_path / ".phase3_best.pt.tmp", 1)
    os.rename(new, ckpt)
    svc.wait_for(lambda r: r.get("kind") == "checkpoint:reloaded")
    feed.publish(t(6)); rec = svc.forecast(_iso(t(6)))
    with netCDF4.Dataset(out / rec["dir"] / LEADS[0]) as ds: sha_new = ds.nowcast_checkpoint.split("sha256:")[1]
    # ... then by a file that does not load: the loaded model stays
    (tmp_path / ".junk").write_bytes(b"not a checkpoint")
    os.rename(tmp_path / ".junk", ckpt)
    bad = _fault(svc, "checkpoint:unreadable")
    assert "forecasts go on with the loaded model" in bad["message"]
    feed.publish(t(7)); rec = svc.forecast(_iso(t(7)))
    with netCDF4.Dataset(out / rec["dir"] / LEADS[0]) as ds: assert ds.nowcast_checkpoint.endswith(sha_new)

    # a read that hangs (a FIFO as the radar's _latest_data_info: open() waits for a writer, as on a dead NFS server)
    fifo = live / "_latest_data_info.xml"
    os.mkfifo(fifo)
    slow = _fault(svc, "input:slow")
    assert str(live) in slow["message"]
    feed.publish(t(8))
    time.sleep(1.5)
    status = json.loads((out / "_nowcast_watch_status.json").read_text())
    assert "input:slow" in status["faults"] and time.time() - status["updated_unix"] < 3  # the service is not hung
    assert _status(out)[0] == 1
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # the server answers at last (both ends: never blocks)
    os.unlink(fifo)
    os.write(fd, b"<latest_data_info>\n</latest_data_info>\n"); os.close(fd)
    svc.forecast(_iso(t(8)))
    feed.publish(t(9)); svc.forecast(_iso(t(9)))

    assert svc.terminate() == 0, "".join(svc.lines)
    assert titan.stop() == []
    kinds = {r["kind"] for r in svc.of("fault")}
    assert kinds == {"input:ENOENT", "checkpoint:unreadable", "input:slow"}, kinds
    issues = [r["issue_time"] for r in svc.of("forecast")]
    assert issues == [_iso(t(k)) for k in range(3, 10)], issues
    status = json.loads((out / "_nowcast_watch_status.json").read_text())
    assert status["errors"] == {"input:ENOENT": 1, "checkpoint:reloaded": 1, "checkpoint:unreadable": 1, "input:slow": 1}


def _faketime_env(clock_file: Path) -> dict:
    "The environment that puts a process on libfaketime's clock, read from `clock_file` every second."
    import libfaketime
    lib = Path(libfaketime.__file__).parent / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
    assert lib.is_file(), lib
    return {"LD_PRELOAD": str(lib), "FAKETIME_TIMESTAMP_FILE": str(clock_file), "FAKETIME_CACHE_DURATION": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_FORCE_MONOTONIC_FIX": "0"}  # (with the fix, a thread waiting on an event wakes only at its timeout)


def test_clock_scans_ahead_past_and_steps(tmp_path, monkeypatch):
    "A scan 6 h ahead (held back), one long past, the clock stepped back 3 h and forward a day: forecasts go on."
    ckpt = _checkpoint(tmp_path / "phase3_best.pt", 0)
    clock = tmp_path / "clock"
    clock.write_text("+0\n")
    for k, v in _faketime_env(clock).items(): monkeypatch.setenv(k, v)  # for the service only (Service copies os.environ)
    live, out = tmp_path / "live", tmp_path / "forecasts"
    feed = Feed(live, tmp_path / "staged")
    now = np.datetime64(int(time.time()) // 300 * 300, "s")
    t = lambda k: now - np.timedelta64(3 * 3600, "s") + np.timedelta64(300 * k, "s")
    for k in range(N_IN - 1): feed.publish(t(k))
    svc = Service(tmp_path, "--input", str(live), "--out", str(out), "--model-path", str(ckpt), "--device", "cpu",
                  "--settle-s", "1", "--poll-s", "0.2")
    for k in ("LD_PRELOAD", "FAKETIME_TIMESTAMP_FILE"): monkeypatch.delenv(k)
    feed.publish(t(3)); svc.forecast(_iso(t(3)))

    ahead = feed.publish(now + np.timedelta64(6 * 3600, "s"))  # a radar clock glitch
    note = svc.wait_for(lambda r: r.get("kind") == "clock:scan_ahead")
    assert str(ahead) in note["message"] and "held back" in note["message"]
    feed.publish(t(4)); svc.forecast(_iso(t(4)))  # not blocked by the scan from the future

    past = now - np.timedelta64(2 * 86400, "s")
    feed.publish(past, name=f"radar_{str(past)[:10].replace('-', '')}_{str(past)[11:19].replace(':', '')}.nc")
    svc.wait_for(lambda r: r.get("kind") == "scan:late")
    feed.publish(t(5)); svc.forecast(_iso(t(5)))

    clock.write_text("-3h\n")  # this machine's clock stepped back: the scans now look 25 min ahead of it
    svc.wait_for(lambda r: r.get("kind") == "clock:step_back")
    feed.publish(t(6)); svc.forecast(_iso(t(6)))
    _fault(svc, "clock:behind")
    clock.write_text("+1h\n")  # and forward by 4 h: the scan from the future is still ahead, and still held
    svc.wait_for(lambda r: r.get("kind") == "clock:step_forward")
    feed.publish(t(7)); svc.forecast(_iso(t(7)))
    svc.wait_for(lambda r: r.get("event") == "cleared" and r["kind"] == "clock:behind")
    assert svc.terminate() == 0, "".join(svc.lines)
    issues = [r["issue_time"] for r in svc.of("forecast")]
    assert issues == [_iso(t(k)) for k in range(3, 8)], issues
    assert all(r["latency_s"] < 60 for r in svc.of("forecast"))  # the monotonic clock: no step in them


def test_kill_9_and_restart(tmp_path):
    "kill -9 at any moment leaves no partial group in sight; the next start removes what it left and goes on."
    ckpt = _checkpoint(tmp_path / "phase3_best.pt", 0)
    live, out = tmp_path / "live", tmp_path / "forecasts"
    feed = Feed(live, tmp_path / "staged")
    t = lambda k: np.datetime64("2024-06-01T12:00:00", "s") + np.timedelta64(300 * k, "s")
    for k in range(N_IN): feed.publish(t(k))
    args = ["--input", str(live), "--out", str(out), "--model-path", str(ckpt), "--device", "cpu", "--settle-s", "1",
            "--poll-s", "0.2"]
    svc = Service(tmp_path, *args)
    titan = Titan(out)
    svc.forecast(_iso(t(3)))
    feed.publish(t(4))
    svc.wait_for(lambda r: r.get("event") == "forecast" and r["issue_time"] == _iso(t(4)) or
                 any(out.glob(".nowcast_partial_*")), 30)
    svc.proc.kill(); svc.proc.wait(30)
    left = out / ".nowcast_partial_20240601_g_122500" / "20240601" / "g_122500"  # as a kill during a write leaves it
    left.mkdir(parents=True, exist_ok=True); (left / LEADS[0]).write_bytes(b"half")
    svc = Service(tmp_path, *args)
    svc.wait_for(lambda r: r.get("kind") == "restart:partial_removed")
    feed.publish(t(5)); svc.forecast(_iso(t(5)))
    assert svc.terminate() == 0
    assert titan.stop() == []
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]


def test_soak_smoke(tmp_path):
    "The soak benchmark at its smallest: a few faults through the CLI, a TITAN reader, a summary (under a minute)."
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_soak_watch.py"), "--smoke", "--out-dir",
                          str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    report = json.loads((tmp_path / "soak_watch.json").read_text())
    assert report["crashes"] == 0 and report["partial_seen"] == 0, report
    assert report["missing_after_cleared"] == [], report
    assert (tmp_path / "soak_watch.md").is_file()
