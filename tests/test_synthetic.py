"""`nowcast synth` end to end: the embedded archive is built from params, read back, kept when up to
date, rebuilt identically with --force, never half-written, and checked against DVC's record."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from nowcast import synthetic
from nowcast.io import read_scan

BIN = Path(sys.executable).parent
TINY = {"seed": 3, "nx": 20, "ny": 16, "nz": 3, "dx_km": 2.0, "z_top_km": 12.0, "cadence_s": 300,
        "scans_per_event": 3, "events": {"advection": 1, "multicell": 1, "supercell": 1},
        "origin_lat": 39.87, "origin_lon": -104.76}


def nowcast(*args, cwd):
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    res = subprocess.run([str(BIN / "nowcast"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return res.returncode, res.stdout + res.stderr


def digests(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"raw_dir": "data/raw", "field": "DBZ"}, "synthetic": TINY}))
    return tmp_path


def test_synth_builds_reads_back_and_is_idempotent(project):
    rc, out = nowcast("synth", "--params", "params.yaml", cwd=project)
    assert rc == 0, out
    raw = project / "data" / "raw"
    names = sorted(digests(raw))
    assert names == synthetic.archive_files(**TINY)
    assert len(names) == 9 and names[0] == "2024-05-01_advection_00/20240501/180000.nc"   # LROSE's layout
    assert "3 events, 9 scans" in out and "written" in out
    assert not [p for p in (project / "data").iterdir() if p.name.startswith(".")]  # no temp folder left behind
    scans = [read_scan(raw / n) for n in names]
    assert all(s.grid.matches(scans[0].grid) and s.dbz.shape == (3, 16, 20) for s in scans)
    assert np.all(np.diff(np.array([s.time for s in scans]).astype("int64")) > 0)
    assert max(s.dbz.max() for s in scans[6:]) > 55  # the supercell event

    before = digests(raw)
    mtimes = {p: p.stat().st_mtime_ns for p in raw.rglob("*.nc")}
    rc, out = nowcast("synth", "--params", "params.yaml", cwd=project)
    assert rc == 0 and "up to date" in out, out
    assert {p: p.stat().st_mtime_ns for p in raw.rglob("*.nc")} == mtimes  # nothing rewritten

    rc, out = nowcast("synth", "--params", "params.yaml", "--force", cwd=project)
    assert rc == 0 and "written" in out, out
    assert digests(raw) == before  # same seed, same bytes


def test_synth_out_and_changed_params_rebuild(project, tmp_path):
    assert synthetic.cli_main(["--params", str(project / "params.yaml"), "--out", str(tmp_path / "other")]) == 0
    old = digests(tmp_path / "other")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["synthetic"]["scans_per_event"] = 2
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    assert synthetic.cli_main(["--params", str(project / "params.yaml"), "--out", str(tmp_path / "other")]) == 0
    new = digests(tmp_path / "other")
    assert len(new) == 6 and set(new) < set(old)  # an older synthetic archive is replaced, not merged


def test_synth_refuses_to_replace_users_scans(project):
    mine = project / "mine"
    mine.mkdir()
    (mine / "KFTG20240501_180000.nc").write_bytes(b"precious")
    assert synthetic.cli_main(["--params", str(project / "params.yaml"), "--out", str(mine)]) == 2
    assert (mine / "KFTG20240501_180000.nc").read_bytes() == b"precious"


def test_failed_build_leaves_old_archive(project, monkeypatch):
    raw = project / "raw"
    assert synthetic.cli_main(["--params", str(project / "params.yaml"), "--out", str(raw)]) == 0
    before = digests(raw)

    def broken(out_dir, **kw):
        (Path(out_dir) / "x").mkdir()
        raise OSError("disk full")

    monkeypatch.setattr(synthetic, "make_archive", broken)
    with pytest.raises(OSError, match="disk full"):
        synthetic.cli_main(["--params", str(project / "params.yaml"), "--out", str(raw), "--force"])
    assert digests(raw) == before
    assert sorted(p.name for p in project.iterdir()) == ["params.yaml", "raw"]  # temp folder cleaned up


def test_check_dvc_matches_what_dvc_records(project):
    "The pipeline's synth stage records the archive's md5 in dvc.lock; `--check-dvc dvc.lock` checks a folder against it."
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["synthetic"]["out_dir"] = params["data"]["raw_dir"]
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"synth": {
        "cmd": "nowcast synth --params params.yaml", "params": ["synthetic", "data.raw_dir"],
        "outs": [{"${synthetic.out_dir}": {"cache": False}}]}}}))
    for cmd in (["dvc", "init", "-q", "--no-scm"], ["dvc", "repro", "-q"]):
        res = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    recorded = lock["stages"]["synth"]["outs"][0]["md5"]
    assert synthetic.dvc_dir_md5(project / "data" / "raw") == recorded
    rc, out = nowcast("synth", "--params", "params.yaml", "--check-dvc", "dvc.lock", cwd=project)
    assert rc == 0 and "matches" in out, out
    first = sorted((project / "data" / "raw").rglob("*.nc"))[0]
    data = bytearray(first.read_bytes())
    data[-1] ^= 0xFF  # same names, different bytes
    first.unlink()
    first.write_bytes(bytes(data))
    rc, out = nowcast("synth", "--params", "params.yaml", "--check-dvc", "dvc.lock", cwd=project)
    assert rc == 1 and "differs" in out, out


def test_users_archive_is_not_overwritten_and_nothing_is_built(project):
    "With data.raw_dir pointing at a user's archive, the synth stage leaves it alone and builds nothing."
    mine = project / "datasets" / "mine"
    mine.mkdir(parents=True)
    (mine / "KFTG20240501_180000.nc").write_bytes(b"precious")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["raw_dir"] = "datasets/mine"
    params["synthetic"]["out_dir"] = "data/raw"
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    rc, out = nowcast("synth", "--params", "params.yaml", cwd=project)
    assert rc == 0 and "nothing to build" in out, out
    assert (mine / "KFTG20240501_180000.nc").read_bytes() == b"precious"
    assert [p.name for p in (project / "data" / "raw").iterdir()] == [synthetic.NOT_BUILT]


def test_embedded_archive_matches_dvc_lock():
    "The committed dvc.lock records the md5 the embedded params build: same params, same bytes, on any machine."
    root = Path(__file__).resolve().parents[1]
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]["archive"]
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert lock["params"]["params.yaml"]["synthetic"] == params["synthetic"], "dvc.lock is stale: run dvc repro"
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        syn = {k: v for k, v in params["synthetic"].items() if k != "out_dir"}
        synthetic.make_archive(Path(d) / "data", **syn)
        [out] = [o for o in lock["outs"] if o["path"] == params["synthetic"]["out_dir"]]
        assert synthetic.dvc_dir_md5(Path(d) / "data") == out["md5"]
