"""The baselines' cost per test window (8 scans in, 7 out), timed on this machine's CPU.

    .venv/bin/python benchmarks/bench_baselines.py [--repeat N] [--smoke] [--out-dir DIR]

Every method of `nowcast.baselines.METHODS` forecasts the same window of a smooth, textured field moving
2 px east and 1 px south per scan (a few noisy levels, each weaker than the one below), at the embedded
scale (64 x 64, 8 levels) and at the full scale after pooling (250 x 250, 18 levels); the best of
`--repeat` runs counts. The evaluate stage runs each method once per test window, so the seconds per
window times `evaluate.max_windows` of params-full.yaml is what a method adds to a full-scale evaluation.
Writes `reports/bench_baselines.json` and `.md` (`--out-dir`); `--smoke` times one 32 x 32 x 2 window once.
"""
import argparse, json, platform, sys, time
from pathlib import Path

import numpy as np
import yaml
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nowcast.baselines import METHOD_LABELS, METHODS  # noqa: E402
from _smoke import add_output_args, output_dir  # noqa: E402

N_IN, N_OUT, DX_KM, CADENCE_S = 8, 7, 2.0, 300
SIZES = ((64, 8), (250, 18))  # (pixels a side, levels)
SMOKE_SIZES = ((32, 2),)


def window(n: int, nz: int, seed: int = 0) -> np.ndarray:
    "dBZ [N_IN, nz, n, n]: a smooth random field (cells of about n/16 px) moving east-south-east, clipped to -10..70."
    rng = np.random.default_rng(seed)
    pad = 2 * N_IN + 2
    base = ndimage.gaussian_filter(rng.normal(0, 1, (n + 2 * pad, n + 2 * pad)), n / 16)
    base = (base - base.mean()) / base.std() * 20 + 5
    scans = np.stack([base[pad - k:pad - k + n, pad - 2 * k:pad - 2 * k + n] for k in range(N_IN)])
    vol = np.stack([scans - 3 * z for z in range(nz)], axis=1)
    return np.clip(vol + rng.normal(0, 1, vol.shape), -10, 70).astype(np.float32)


def time_method(name: str, x: np.ndarray, repeat: int) -> float:
    "Best of `repeat` runs, seconds per window."
    f, best = METHODS[name], np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        f(x, N_OUT, dx_km=DX_KM, cadence_s=CADENCE_S)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3, help="runs per method and size; the best counts")
    args = add_output_args(ap).parse_args()
    sizes, repeat = (SMOKE_SIZES, 1) if args.smoke else (SIZES, args.repeat)
    for name in METHODS:  # warm-up: pysteps' import and first calls are not a window's cost
        METHODS[name](window(32, 1), N_OUT, dx_km=DX_KM, cadence_s=CADENCE_S)
    full = yaml.safe_load((ROOT / "params-full.yaml").read_text())["evaluate"]
    max_windows = int(full.get("max_windows", 0))
    rows = []
    for n, nz in sizes:
        x = window(n, nz)
        for name in METHODS:
            s = time_method(name, x, repeat)
            rows.append({"method": name, "grid": [nz, n, n], "seconds_per_window": round(s, 3)})
            print(f"{name:13s} {n}x{n}x{nz}: {s:.3f} s per window", flush=True)
    report = {"what": f"one test window per method: {N_IN} scans in, {N_OUT} out", "repeat": repeat,
              "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
              "full_scale_max_windows": max_windows, "runs": rows}
    reports = output_dir(args)
    (reports / "bench_baselines.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# Baselines: seconds per test window (benchmarks/bench_baselines.py)", "",
             f"{report['what']}, best of {repeat}, on {report['machine']['cpu']} (one process). The last column: "
             f"what the method adds to a full-scale evaluation of {max_windows} windows (params-full.yaml).", "",
             "| method | " + " | ".join(f"{n}x{n}x{nz}" for n, nz in sizes) + f" | {max_windows} windows at full scale |",
             "|---|" + "---|" * (len(sizes) + 1)]
    for name in METHODS:
        s = [r["seconds_per_window"] for r in rows if r["method"] == name]
        lines.append(f"| {METHOD_LABELS[name]} | " + " | ".join(f"{v:.3f} s" for v in s) + f" | {s[-1] * max_windows / 3600:.2f} h |")
    (reports / "bench_baselines.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
