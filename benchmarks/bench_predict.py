"""One full-scale forecast, timed: 8 scans of 500x500x18 in, 7 TITAN files out (upsampled).

    .venv/bin/python benchmarks/bench_predict.py [--device cpu|cuda|all] [--threads N] [--smoke] [--out-dir DIR]

Uses the full-scale model config (`params-full.yaml`'s `model:` if present, else `params.yaml`'s), built as the
training stage builds it (`nowcast.train.model_from_params`, sized for 18 levels, 8 in, 7 out) with random-init
weights (timing only). Splits the time into read / pool / model / upsample / write seconds and writes
`reports/bench_predict.json` and `.md` (`--out-dir`). The budget is the 5-minute scan cadence: a forecast must be
done well before the next scan arrives. `--smoke` forecasts from 100x100x2 scans instead (seconds).
"""
import argparse, json, platform, shutil, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nowcast.io import Grid, azimuthal_equidistant, write_grid_netcdf  # noqa: E402
from nowcast.predict import forecast_scans, write_forecast  # noqa: E402
from nowcast.train import model_from_params  # noqa: E402
from _smoke import add_output_args, output_dir  # noqa: E402

N_IN, N_OUT, CADENCE_S = 8, 7, 300
FULL, SMOKE = (18, 500, 500), (2, 100, 100)  # scans (levels, y, x); the pooled grid divides by the model's strides


def full_params() -> dict:
    "params-full.yaml if present, else params.yaml, with the full-scale window and pooling."
    f = ROOT / "params-full.yaml"
    params = yaml.safe_load((f if f.is_file() else ROOT / "params.yaml").read_text())
    params.setdefault("prepare", {}).update(n_in=N_IN, n_out=N_OUT, pool=2)
    return params, f.name if f.is_file() else "params.yaml (params-full.yaml absent)"


def build_model(params: dict, nz: int):
    "The params' model for `nz` levels, 8 scans in and 7 out, random weights; and its `{name, kwargs}` config."
    torch.manual_seed(0)
    return model_from_params(params, nz, N_IN, N_OUT)


def write_inputs(folder: Path, shape: tuple = FULL) -> list[Path]:
    "Eight scans of moving storms (`shape`: levels, y, x; 500x500x18 by default), 1 km grid, LROSE-style CF NetCDF."
    NZ, NY, NX = shape
    grid = Grid(np.arange(NX) - NX / 2 + 0.5, np.arange(NY) - NY / 2 + 0.5, 0.5 + np.arange(NZ) * 1.0,
                azimuthal_equidistant(39.87, -104.76))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:NY, :NX].astype(np.float32)
    cells = rng.uniform([0.1 * NY, 0.1 * NX, 8, 35], [0.9 * NY, 0.9 * NX, 25, 62], (12, 4))
    profile = np.exp(-((grid.z_km - 4.0) / 5.0) ** 2).astype(np.float32)[:, None, None]
    t0 = np.datetime64("2024-06-01T12:00:00", "s")
    paths = []
    for k in range(N_IN):
        field = np.full((NY, NX), -10.0, np.float32)
        for cy, cx, r, peak in cells:
            field = np.maximum(field, peak * np.exp(-(((xx - cx - 3 * k) ** 2 + (yy - cy - 2 * k) ** 2) / r ** 2)) - 5)
        dbz = np.where(profile * (field[None] + 10) - 10 > 0, profile * (field[None] + 10) - 10, -10.0).astype(np.float32)
        missing = np.zeros(dbz.shape, bool)
        missing[:, :NY // 12, :] = True  # a blocked sector
        t = t0 + np.timedelta64(k * CADENCE_S, "s")
        paths.append(write_grid_netcdf(folder / f"20240601_{12 + (k * 5) // 60:02d}{(k * 5) % 60:02d}00.nc",
                                       dbz, missing, t, grid, "DBZ"))
    return paths


def bench(device: str, params: dict, model, cfg, scans: list[Path], out: Path) -> dict:
    forecast_scans(model, params, scans, device=device)  # warm-up (allocations, cuDNN autotune)
    if device == "cuda": torch.cuda.synchronize()
    t0 = time.perf_counter()
    fc = forecast_scans(model, params, scans, device=device, upsample=True)
    t1 = time.perf_counter()
    files = write_forecast(fc, out / device, model_config=cfg, checkpoint="random-init", checkpoint_sha256="-",
                           params=params)
    t2 = time.perf_counter()
    s = {k: round(v, 3) for k, v in fc.timings.items()}
    s["write"] = round(t2 - t1, 3)
    s["total"] = round(t2 - t0, 3)
    return {"device": device, "seconds": s, "files": len(files), "shape_out": list(fc.dbz.shape),
            "bytes_per_file": int(np.mean([f.stat().st_size for f in files]))}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="all", help="cpu, cuda or all (cpu + cuda when available)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = add_output_args(ap).parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    shape = SMOKE if args.smoke else FULL
    params, params_source = full_params()
    model, cfg = build_model(params, shape[0])
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d != "cuda" or torch.cuda.is_available()]
    tmp = Path(tempfile.mkdtemp(prefix="bench_predict."))
    try:
        t0 = time.perf_counter()
        scans = write_inputs(tmp / "raw", shape)
        setup_s = time.perf_counter() - t0
        runs = [bench(d, params, model, cfg, scans, tmp / "out") for d in devices]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    what = "x".join(map(str, (shape[1], shape[2], shape[0])))
    report = {"what": f"one forecast: {N_IN} scans {what} in, {N_OUT} upsampled TITAN files out",
              "model": cfg, "params_source": params_source,
              "parameters": sum(p.numel() for p in model.parameters()),
              "machine": {"cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
                          "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                          "torch": torch.__version__},
              "input_write_s": round(setup_s, 2), "budget_s": CADENCE_S, "runs": runs}
    reports = output_dir(args)
    (reports / "bench_predict.json").write_text(json.dumps(report, indent=2))
    lines = ["# Forecast timing (benchmarks/bench_predict.py)", "",
             f"{report['what']}; model {cfg['name']} {cfg['kwargs']} ({report['parameters']:,} parameters, "
             f"random weights, config from {params_source}); torch {torch.__version__}, "
             f"{torch.get_num_threads()} CPU threads. Budget: the {CADENCE_S} s scan cadence.", "",
             "| device | read | pool | model | upsample | write | total |", "|---|---|---|---|---|---|---|"]
    for r in runs:
        s = r["seconds"]
        lines.append(f"| {r['device']} | {s['read']} | {s['pool']} | {s['model']} | {s['upsample']} | {s['write']} | {s['total']} |")
    (reports / "bench_predict.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
