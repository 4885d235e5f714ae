"""Helpers for the tests that run the pipeline through DVC in a copy of the project."""
import json, os, re, shutil, subprocess, sys, time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# tiny params: the whole pipeline in seconds (3 events of 17 scans on a 32 x 32 x 3 grid, a 4 + 4 channel model)
TINY = {
    "synthetic": {"nx": 32, "ny": 32, "nz": 3, "dx_km": 3.0, "scans_per_event": 17,
                  "events": {"advection": 1, "multicell": 1, "supercell": 1}},
    "prepare": {"n_in": 4, "n_out": 3, "stride": 2, "split": {"train": 0.34, "val": 0.33, "test": 0.33}},
    "model": {"hidden": [4, 4], "downsample": [2, 2], "groups": 2},
    "train": {"batch_size": 4, "warmup_steps": 2},
    "phase1": {"epochs": 1}, "phase2": {"epochs": 2}, "phase3": {"epochs": 3},
    "evaluate": {"max_windows": 4, "fss_scales": [1, 3]},
    "predict": {"max_forecasts": 1},
}
COPY = ["nbs", "nowcast", "pipeline", "dvc.yaml", "params.yaml", "params-full.yaml", "params-real.yaml", "pyproject.toml", ".dvcignore"]


def merge(base, over):
    "Recursively override `base` with `over`."
    for k, v in over.items():
        base[k] = merge(base.get(k, {}), v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return base


def env():
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PYTHONHASHSEED": "0"}


def run(cmd, cwd, check=True, timeout=1200):
    "Run a command with the project's venv on PATH; fail the test with its output if it fails."
    res = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout,
                         shell=isinstance(cmd, str))   # a string is a shell command line, as a user types it
    if check:
        shown = cmd if isinstance(cmd, str) else " ".join(cmd)
        assert res.returncode == 0, f"{shown} failed:\n{res.stdout[-6000:]}\n{res.stderr[-6000:]}"
    return res.stdout + res.stderr


def ran(out):
    "The stages `dvc repro` ran, in order."
    return re.findall(r"Running stage '([^']+)'", out)


def copy_project(dst: Path, over: dict | None = None) -> Path:
    "A copy of the project with `over` merged into params.yaml, in its own git repo with DVC."
    dst.mkdir(parents=True)
    for name in COPY:
        src = ROOT / name
        if src.is_dir(): shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        else: shutil.copy2(src, dst / name)
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), over or {})
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@t"], ["git", "config", "user.name", "t"],
                ["dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        run(cmd, dst)
    return dst


# slow enough to stop mid-epoch: 60 scans per event, stride 1 and batch 1 (about 50 batches per epoch), a progress
# line after every batch, no time-based checkpoint (a `last` checkpoint mid-epoch 0 can only come from a signal)
SLOW = merge(json.loads(json.dumps(TINY)), {
    "synthetic": {"scans_per_event": 60},
    "prepare": {"stride": 1},
    "train": {"batch_size": 1, "log_every_s": 0, "checkpoint_every_min": 0},
    "phase1": {"epochs": 3},
})


def wait_for(proc, pattern, timeout=300):
    "Read `proc`'s output line by line until a line matches; returns the lines read."
    lines, t0 = [], time.time()
    while time.time() - t0 < timeout:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None: break
            continue
        lines.append(line)
        if re.search(pattern, line): return lines
    raise AssertionError(f"no line matching {pattern!r}:\n{''.join(lines)[-4000:]}")
