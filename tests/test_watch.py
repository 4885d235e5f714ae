"""`nowcast watch` on a replayed live feed, through its own command (a subprocess, as systemd or Docker runs it):
one forecast per complete scan; a scan still being written, a corrupt scan, a gap, a late and a repeated scan; a
restart; SIGTERM; and `_latest_data_info` in LROSE's format naming the newest forecast. Tiny grids, CPU, ~30 s."""
import json, os, shutil, signal, subprocess, sys, threading, time
from pathlib import Path

import numpy as np
import pytest
import torch

from nowcast.io import SCAN_ERROR_KINDS
from nowcast.predict import demo_scans
from nowcast.watch import parse_ldata_ascii, parse_ldata_xml, write_latest_data_info

ROOT = Path(__file__).resolve().parents[1]
N_IN, N_OUT, NZ, NY, NX = 4, 3, 2, 16, 16
SETTLE_S = 3.0  # files written in place wait this long; renamed or announced ones do not wait
PARAMS = {"data": {"field": "DBZ"}, "prepare": {"pool": 2, "n_in": N_IN, "n_out": N_OUT, "max_gap_s": 450}}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    "A checkpoint following the training contract (random weights: speed and files do not depend on them)."
    from nowcast.models import get_model
    torch.manual_seed(0)
    kwargs = dict(n_levels=NZ, n_in=N_IN, n_out=N_OUT, hidden=[4, 4], groups=1)
    path = tmp_path_factory.mktemp("ckpt") / "phase3_best.pt"
    torch.save({"model": get_model("ConvLSTM3D_Enhanced", **kwargs).state_dict(),
                "model_config": {"name": "ConvLSTM3D_Enhanced", "kwargs": kwargs}, "params": PARAMS}, path)
    return path


class Service:
    "`nowcast watch` in a subprocess; its JSON log lines collected as they come."
    def __init__(self, cwd: Path, *args: str):
        self.records, self.lines = [], []
        self.proc = subprocess.Popen([sys.executable, "-m", "nowcast.cli", "watch", *args, "--log-format", "json"],
                                     cwd=cwd, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for(lambda r: r.get("event") == "start", 120)

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            try: self.records.append(json.loads(line))
            except ValueError: pass

    def of(self, event: str) -> list[dict]:
        return [r for r in self.records if r.get("event") == event]

    def wait_for(self, pred, timeout_s: float = 30) -> dict:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            hits = [r for r in self.records if pred(r)]
            if hits: return hits[-1]
            assert self.proc.poll() is None, f"the service exited ({self.proc.returncode}):\n{''.join(self.lines)}"
            time.sleep(0.05)
        raise AssertionError(f"timed out; the service said:\n{''.join(self.lines)}")

    def forecast(self, issue: str, timeout_s: float = 30) -> dict:
        return self.wait_for(lambda r: r.get("event") == "forecast" and r["issue_time"] == issue, timeout_s)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        self._reader.join(10)
        return rc


def _rel(k: int) -> str:
    "The LROSE path of the k-th scan of the feed (12:00 + 5 k minutes)."
    return f"20240601/{12 + (k * 5) // 60:02d}{(k * 5) % 60:02d}00.nc"


def _issue(k: int) -> str:
    return f"2024-06-01T{12 + (k * 5) // 60:02d}:{(k * 5) % 60:02d}:00Z"


def test_replayed_feed(tmp_path, checkpoint):
    staged = {p.relative_to(tmp_path / "staged").as_posix(): p
              for p in demo_scans(tmp_path / "staged", n=13, ny=NY, nx=NX, nz=NZ)}
    live, out = tmp_path / "live", tmp_path / "forecasts"
    live.mkdir()

    def publish(k: int, data: bytes | None = None, name: str | None = None):
        "Write as LROSE's writers do: a temporary name, then a rename into place."
        dest = live / (name or _rel(k))
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        tmp.write_bytes(data if data is not None else staged[_rel(k)].read_bytes())
        os.rename(tmp, dest)

    args = ["--input", str(live), "--out", str(out), "--model-path", str(checkpoint), "--device", "cpu",
            "--settle-s", str(SETTLE_S), "--poll-s", "0.2"]
    svc = Service(tmp_path, *args)
    # too few scans: one line, then silence until four are there
    publish(0)
    svc.wait_for(lambda r: r.get("event") == "waiting" and "needs 4" in r["reason"])
    publish(1); publish(2); time.sleep(0.5)
    publish(3); svc.forecast(_issue(3))
    publish(4); svc.forecast(_issue(4))

    # 12:25 written in place, slowly (a writer still at work), then announced by the radar's _latest_data_info
    partial = live / _rel(5)
    data = staged[_rel(5)].read_bytes()
    with open(partial, "wb") as f:
        for k in range(4):
            f.write(data[k * len(data) // 4:(k + 1) * len(data) // 4]); f.flush(); time.sleep(0.3)
    announced = time.time()
    write_latest_data_info(live, np.datetime64("2024-06-01T12:25:00"), _rel(5))
    rec = svc.forecast(_issue(5), timeout_s=SETTLE_S + 30)
    assert rec["complete_at"] - announced < SETTLE_S  # complete when announced, not after settling

    # 12:30 corrupt: refused with its kind, skipped; 12:35 then has a 600 s gap behind it: one line, no forecast
    publish(6, b"CDF\x01" + bytes(2000))
    refused = svc.wait_for(lambda r: r.get("event") == "refused")
    assert refused["scan"] == str(live / _rel(6)) and refused["kind"] in SCAN_ERROR_KINDS
    publish(7)
    gap = svc.wait_for(lambda r: r.get("event") == "waiting" and "gap" in r["reason"])
    assert "600 s" in gap["reason"] and "max_gap_s" in gap["reason"]
    publish(8); publish(9); time.sleep(0.5)
    publish(10); svc.forecast(_issue(10))  # 12:35 ... 12:50: four in a row again

    # late, out of order and twice: the real 12:30 arrives after 12:50; 12:50 again under a flat name; 12:20 rewritten
    publish(6); publish(10, name="20240601_125000.nc"); publish(4)
    time.sleep(1.5)
    assert svc.terminate() == 0, "".join(svc.lines)
    assert svc.of("stop"), "".join(svc.lines)
    first_run = svc

    # restart (polling only this time): old scans are not forecast again; the next new one is
    svc = Service(tmp_path, *args[:-2], "--poll-s", "0.2", "--events", "poll")
    time.sleep(SETTLE_S + 1)
    assert not svc.of("forecast"), "".join(svc.lines)
    publish(11); svc.forecast(_issue(11), timeout_s=SETTLE_S + 30)
    publish(12); time.sleep(0.2 + SETTLE_S * 0.5)  # SIGTERM while 13:00 is settling or being forecast
    assert svc.terminate() == 0, "".join(svc.lines)

    forecasts = first_run.of("forecast") + svc.of("forecast")
    issues = [r["issue_time"] for r in forecasts]
    assert len(issues) == len(set(issues)), issues  # never two forecasts for one issue time
    expected = [_issue(k) for k in (3, 4, 5, 10, 11)]
    assert issues in (expected, expected + [_issue(12)]), issues  # one per complete scan the feed allowed
    assert first_run.of("refused") == [refused] and not svc.of("refused")  # the partial file was never read early
    assert len(first_run.of("waiting")) == 2  # one line at the start, one at the gap
    assert rec["seconds"].keys() == {"read", "pool", "model", "upsample", "write"}

    # every forecast whole (SIGTERM finishes the one being written), in TITAN's layout
    dirs = sorted((out / "20240601").iterdir())
    assert [d.name for d in dirs] == [f"g_{r['issue_time'][11:19].replace(':', '')}" for r in forecasts]
    for d in dirs:
        assert sorted(f.name for f in d.iterdir()) == ["f_00000300.nc", "f_00000600.nc", "f_00000900.nc"], d
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]

    # _latest_data_info names the newest forecast, in both of LROSE's forms
    newest = forecasts[-1]
    rel = f"20240601/{newest['dir'].split('/')[-1]}/f_00000900.nc"
    t = np.datetime64(newest["issue_time"][:-1], "s")
    xml = (out / "_latest_data_info.xml").read_text()
    info = parse_ldata_xml(xml)
    assert info["rel_data_path"] == rel and (out / rel).is_file()
    assert info["unix_time"] == int(t.astype(np.int64)) == info["max_time"]
    assert info["lead_s"] == 900 and info["writer"] == "nowcast"
    tags = [line.strip().split(">")[0].lstrip("<") for line in xml.splitlines()[1:-1]]
    assert tags == ["unix_time", "year", "month", "day", "hour", "min", "sec", "rel_data_path", "file_ext", "data_type",
                    "user_info1", "user_info2", "is_forecast", "forecast_lead_secs", "writer", "max_time", "prev_mod_time"]
    ascii_ = (out / "_latest_data_info").read_text()
    lines = ascii_.splitlines()
    hh, mm = int(newest["issue_time"][11:13]), int(newest["issue_time"][14:16])
    assert lines == [f"{info['unix_time']} 2024 6 1 {hh} {mm} 0 ", "nc", "nowcast", rel, "1", "900"]
    assert parse_ldata_ascii(ascii_)["unix_time"] == info["unix_time"]
    state = json.loads((out / "_nowcast_watch.json").read_text())
    assert state["last_issue_time"] == newest["issue_time"][:-1]


def test_once_for_cron(tmp_path, checkpoint):
    "`--once`: the latest complete scan, then exit 0; again: nothing new, exit 0; too few scans: exit 1."
    live, out = tmp_path / "live", tmp_path / "forecasts"
    demo_scans(live, n=N_IN + 1, ny=NY, nx=NX, nz=NZ)
    cmd = [sys.executable, "-m", "nowcast.cli", "watch", "--input", str(live), "--out", str(out),
           "--model-path", str(checkpoint), "--device", "cpu", "--once", "--settle-s", "0.5"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = lambda: subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    first = run()
    assert first.returncode == 0, first.stderr
    assert "forecast 2024-06-01T12:20:00Z: 3 leads 300..900 s" in first.stderr
    assert [p.name for p in (out / "20240601").iterdir()] == ["g_122000"]
    again = run()
    assert again.returncode == 0 and "forecast 2024" not in again.stderr, again.stderr
    few = tmp_path / "few"
    for p in sorted(live.rglob("*.nc"))[:2]:
        (few / p.parent.name).mkdir(parents=True, exist_ok=True); shutil.copy(p, few / p.parent.name / p.name)
    cmd[cmd.index("--input") + 1], cmd[cmd.index("--out") + 1] = str(few), str(tmp_path / "few_out")
    res = run()
    assert res.returncode == 1 and "the model needs 4" in res.stderr, res.stderr


def test_once_writes_probabilities_with_a_head_beside_the_checkpoint(tmp_path, checkpoint):
    """A probability head beside the checkpoint is used by default: every lead's file carries its probabilities, in the
    same whole group; a head that does not load at the start is a clear error naming it (exit 2)."""
    from nowcast.probability import ProbabilityHead, start_weights
    from nowcast.read import read_probabilities
    models, live, out = tmp_path / "models", tmp_path / "live", tmp_path / "forecasts"
    models.mkdir()
    (models / "phase3_best.pt").write_bytes(checkpoint.read_bytes())
    r = np.ones((2, N_OUT), np.int64)
    ProbabilityHead([20.0, 35.0], r, start_weights(r)).save(models / "probability.pt")
    demo_scans(live, n=N_IN, ny=NY, nx=NX, nz=NZ)
    cmd = [sys.executable, "-m", "nowcast.cli", "watch", "--input", str(live), "--out", str(out),
           "--model-path", str(models / "phase3_best.pt"), "--device", "cpu", "--once", "--settle-s", "0", "--log-format", "json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = lambda *extra: subprocess.run([*cmd, *extra], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    res = run()
    assert res.returncode == 0, res.stderr
    rec = [json.loads(line) for line in res.stderr.splitlines() if '"forecast"' in line][-1]
    assert "probability" in rec["seconds"]
    files = sorted((out / "20240601" / "g_121500").iterdir())
    assert [f.name for f in files] == ["f_00000300.nc", "f_00000600.nc", "f_00000900.nc"]
    for f in files:
        probs = read_probabilities(f)
        assert list(probs) == [20.0, 35.0] and all(p.shape == (NY, NX) for p in probs.values())
        assert all(np.nanmin(p) >= 0 and np.nanmax(p) <= 1 for p in probs.values())
    status = json.loads((out / "_nowcast_watch_status.json").read_text())
    assert status["probability"]["path"] == str(models / "probability.pt")
    assert status["probability"]["thresholds_dbz"] == [20.0, 35.0]
    (models / "probability.pt").write_bytes(b"not a head")
    bad = run("--out", str(tmp_path / "again"))
    assert bad.returncode == 2 and f"{models / 'probability.pt'}: cannot read the probability head" in bad.stderr, bad.stderr
