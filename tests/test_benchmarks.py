"""Every benchmark keeps running: each `benchmarks/bench_*.py` at its smallest scale (`--smoke`, seconds).

No figure is asserted (they depend on the machine); a smoke run goes through the benchmark's own code at tiny
sizes, so an API change that would break it (a renamed function, a changed signature) fails here, not months
later when someone remakes a report. A new benchmark is covered as soon as its file exists."""
import json, math, os, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted((ROOT / "benchmarks").glob("bench_*.py"))


def _files(folder: Path) -> dict:
    "Each file under `folder` with its size and modification time: what a write would change."
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def test_every_benchmark_is_found():
    assert len(BENCHMARKS) >= 6, BENCHMARKS


def _check_learning_curve(out: Path):
    "Each subset reports the BSS gain at 35 dBZ of its trained probabilities over their start, finite, with its SE."
    rows = json.loads((out / "learning_curve.json").read_text())["rows"]
    assert [r["label"] for r in rows] == ["0.5", "all"], rows
    for r in rows:
        g, bss = r["bss_gain"], r["bss35"]
        assert all(math.isfinite(g[k]) for k in ("gain", "se", "se_time")), g
        assert len(bss["trained"]) == len(bss["start"]) == len(g["gain_by_lead"]) == len(r["gain"]["gain_by_lead"])
        assert all(math.isfinite(v) and v <= 1 for v in bss["trained"] + bss["start"]), bss
        mean = lambda v: sum(v) / len(v)
        assert math.isclose(g["gain"], mean(bss["trained"]) - mean(bss["start"]), abs_tol=1e-9), (g["gain"], bss)
        assert r["head_fit_windows"] == r["train_windows"], r   # fitted on the subset's own training windows
    md = (out / "learning_curve.md").read_text()
    assert "BSS gain of the trained probabilities over their start (SE)" in md
    assert f"{rows[0]['bss_gain']['gain']:+.3f} ({rows[0]['bss_gain']['se']:.3f})" in md


# Benchmarks whose smoke reports are checked too: written to `--out-dir` (a temporary folder), then read back.
REPORT_CHECKS = {"bench_learning_curve": _check_learning_curve}


@pytest.mark.parametrize("script", BENCHMARKS, ids=[p.stem for p in BENCHMARKS])
def test_benchmark_smoke(script, tmp_path):
    "The benchmark runs from the repository root with `--smoke`, exits 0 and leaves reports/ as it was."
    reports = _files(ROOT / "reports")
    out = ["--out-dir", str(tmp_path)] if script.stem in REPORT_CHECKS else []
    res = subprocess.run([sys.executable, str(script), "--smoke", *out], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONHASHSEED": "0"}, timeout=300)
    assert res.returncode == 0, f"{script.name} --smoke exited {res.returncode}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    after = _files(ROOT / "reports")
    changed = sorted(k for k in reports.keys() | after.keys() if reports.get(k) != after.get(k))
    assert not changed, f"{script.name} --smoke wrote into reports/: {changed}"
    if script.stem in REPORT_CHECKS: REPORT_CHECKS[script.stem](tmp_path)


@pytest.mark.parametrize("script", BENCHMARKS, ids=[p.stem for p in BENCHMARKS])
def test_benchmark_uses_public_functions(script):
    "A benchmark builds what it measures through the package's public names: a private one can change under it unseen."
    import ast
    private = []
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nowcast"):
            private += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            while isinstance(base, ast.Attribute): base = base.value
            if isinstance(base, ast.Name) and base.id == "nowcast": private.append(node.attr)
    assert not private, f"{script.name} uses private names of nowcast: {private}"
