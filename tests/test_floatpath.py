"""The pinned float path through the entry point users run: `nowcast train` and `nowcast fingerprint` (the installed
console script, as `dvc repro` and the image call it) train on ATen's AVX2 kernels, MKL's COMPATIBLE branch and 2
threads whatever the shell exported, and `NOWCAST_FLOAT_PATH=native` leaves the machine's own path."""
import json, os, re, subprocess, sys
from pathlib import Path

import yaml

from nowcast.floatpath import PINNED_ENV, PINNED_THREADS, SWITCH

NOWCAST = Path(sys.executable).parent / "nowcast"
SHELL_VARS = (SWITCH, *PINNED_ENV, "OMP_NUM_THREADS")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in SHELL_VARS}
    return {**env, "PYTHONHASHSEED": "0", **extra}


def _nowcast(args, cwd, **extra):
    res = subprocess.run([str(NOWCAST), *args], cwd=cwd, env=_env(**extra), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def _params(tmp_path, tiny_params) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params))
    return path


def _fingerprint(out: str) -> tuple[float, str]:
    m = re.search(r"^fingerprint ([0-9.]+): phase 1's training loss over its first (\d+) batches", out, re.M)
    assert m, out
    return float(m.group(1)), out.splitlines()[-1]


def test_train_records_the_pinned_path_whatever_the_shell_says(tmp_path, tiny_params):
    "A shell that exports another ATen capability and MKL branch still trains on the pinned path, and the summary says so."
    params = _params(tmp_path, tiny_params)
    _nowcast(["train", "--params", str(params), "--phase", "phase1", "--epochs", "1"], tmp_path,
             ATEN_CPU_CAPABILITY="default", MKL_CBWR="AUTO", OMP_NUM_THREADS="1")
    fp = json.loads((tmp_path / "reports/phase1_train.json").read_text())["float_path"]
    assert (fp["mode"], fp["aten"], fp["mkl_cbwr"], fp["threads"], fp["took"]) == \
        ("pinned", "AVX2", PINNED_ENV["MKL_CBWR"], PINNED_THREADS, True), fp


def test_fingerprint_is_the_pinned_paths_and_writes_nothing(tmp_path, tiny_params):
    "Twice the same figure, the same under a shell's other settings; `native` runs the shell's path; no file is left."
    params = _params(tmp_path, tiny_params)
    a, path_a = _fingerprint(_nowcast(["fingerprint", "--params", str(params), "--batches", "2"], tmp_path).stdout)
    b, _ = _fingerprint(_nowcast(["fingerprint", "--params", str(params), "--batches", "2"], tmp_path,
                                 ATEN_CPU_CAPABILITY="default", OMP_NUM_THREADS="1").stdout)
    assert a == b and path_a.startswith("pinned float path: ATen AVX2") and "MKL_CBWR=COMPATIBLE, 2 threads" in path_a
    _, path_n = _fingerprint(_nowcast(["fingerprint", "--params", str(params), "--batches", "2"], tmp_path,
                                      **{SWITCH: "native", "ATEN_CPU_CAPABILITY": "default"}).stdout)
    assert path_n.startswith("native float path: ATen DEFAULT"), path_n
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]   # checkpoints, logs and reports went with the temp folder


def test_a_wrong_switch_is_refused_by_name(tmp_path):
    res = subprocess.run([str(NOWCAST), "fingerprint"], cwd=tmp_path, env=_env(**{SWITCH: "fastest"}),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "NOWCAST_FLOAT_PATH='fastest'" in res.stderr
