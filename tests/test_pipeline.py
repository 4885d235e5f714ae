"""The DVC pipeline end to end on tiny params: every stage runs, a second repro does nothing, and a
phase-3 change reruns phase 3 onwards only."""
import json, os, re, shutil, subprocess, sys
from pathlib import Path

import pytest, yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COPY = ["nbs", "nowcast", "pipeline", "dvc.yaml", "params.yaml", "pyproject.toml", ".dvcignore"]
TINY = {
    "synthetic": {"nx": 32, "ny": 32, "nz": 3, "dx_km": 3.0, "scans_per_event": 17,
                  "events": {"advection": 1, "multicell": 1, "supercell": 1}},
    "prepare": {"n_in": 4, "n_out": 3, "stride": 2, "split": {"train": 0.34, "val": 0.33, "test": 0.33}},
    "model": {"hidden": [4], "downsample": [2], "groups": 2},
    "train": {"batch_size": 4, "warmup_steps": 2},
    "phase1": {"epochs": 1}, "phase2": {"epochs": 2}, "phase3": {"epochs": 3},
    "evaluate": {"max_windows": 4, "fss_scales": [1, 3]},
    "predict": {"max_forecasts": 1},
}


def _merge(base, over):
    "Recursively override `base` with `over`."
    for k, v in over.items():
        base[k] = _merge(base.get(k, {}), v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return base


def _run(cmd, cwd):
    "Run a command with the project's venv on PATH; fail the test with its output if it fails."
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PYTHONHASHSEED": "0"}
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout[-6000:]}\n{res.stderr[-6000:]}"
    return res.stdout + res.stderr


def _ran(out):
    "The stages `dvc repro` ran, in order."
    return re.findall(r"Running stage '([^']+)'", out)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    "A copy of the project with tiny params, its embedded archive built, in its own git repo."
    dst = tmp_path_factory.mktemp("pipeline") / "proj"
    dst.mkdir()
    for name in COPY:
        src = ROOT / name
        if src.is_dir(): shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        else: shutil.copy2(src, dst / name)
    params = _merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@t"], ["git", "config", "user.name", "t"],
                ["dvc", "init", "-q"], ["nowcast", "synth", "--params", "params.yaml"],
                ["dvc", "add", "-q", params["data"]["raw_dir"]], ["git", "add", "-A"], ["git", "commit", "-qm", "tiny"]):
        _run(cmd, dst)
    return dst


def test_repro_runs_every_stage(project):
    "A first `dvc repro` runs all stages and leaves the rendered reports, checkpoints and metrics."
    out = _run(["dvc", "repro"], project)
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert _ran(out) == list(stages), out[-3000:]
    for phase in ("phase1", "phase2", "phase3"):
        assert (project / f"reports/{phase}_report.html").stat().st_size > 10_000
        assert (project / f"checkpoints/{phase}_best.pt").exists()
    metrics = json.loads(_run(["dvc", "metrics", "show", "--json"], project))
    assert metrics, "dvc metrics show found no metrics"
    _run(["dvc", "plots", "show", "-o", "plots_html"], project)
    assert (project / "plots_html/index.html").exists()


def test_second_repro_does_nothing(project):
    "Nothing changed, nothing runs."
    out = _run(["dvc", "repro"], project)
    assert _ran(out) == [], out[-3000:]


def test_phase3_change_reruns_phase3_onwards(project):
    "A phase-3 parameter change reruns phase 3 and what follows, never phases 1-2."
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["phase3"]["lr"] = 2e-5
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = _run(["dvc", "repro"], project)
    ran = _ran(out)
    assert ran and ran[0] == "train_phase3", ran
    assert not {"prepare", "train_phase1", "train_phase2"} & set(ran), ran
    _run(["git", "add", "-A"], project)
    _run(["git", "commit", "-qm", "phase3 lr"], project)
    assert "phase3.lr" in _run(["dvc", "exp", "show", "--md"], project)
