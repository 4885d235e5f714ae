"""Training throughput and memory: samples/s and peak memory per model, at the demo scale and at full scale.

    python benchmarks/bench_train.py            # CPU part (and the CUDA part when a GPU is present)
    python benchmarks/bench_train.py --quick    # fewer steps
    python benchmarks/bench_train.py --smoke    # seconds: one step per model at the demo scale, a 2-batch loop (make test)

Each configuration runs in its own subprocess so that its peak RSS (ru_maxrss) is its own. A step is the
real training step of `nowcast.train` (forward under autocast, `nowcast_loss`, backward, clip, AdamW) on
random windows of the configured shape; the model is built as the training stage builds it
(`nowcast.train.model_from_params`). Writes reports/bench_train.json and reports/bench_train.md (`--out-dir`)."""
import argparse, inspect, json, os, platform, resource, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _smoke import add_output_args, output_dir  # noqa: E402


def _load_yaml(path):
    import yaml
    return yaml.safe_load(Path(path).read_text())


def _model_kwargs(name, model_section):
    "The params' model keys that this model's constructor takes (the two models take different ones)."
    from nowcast.models import MODELS
    sig = inspect.signature(MODELS[name].__init__).parameters
    return {k: v for k, v in model_section.items() if k != "name" and k in sig}


def _fit_grid(name, kwargs, hw):
    "Strides whose product divides the grid (250 is not divisible by the 3-D model's default 2 x 2): first stage only."
    import math
    from nowcast.models import MODELS
    sig = inspect.signature(MODELS[name].__init__).parameters
    if "downsample" not in sig or "downsample" in kwargs:
        return kwargs
    down = sig["downsample"].default
    n = len(kwargs.get("hidden", sig["hidden"].default))
    strides = [down] + [1] * (n - 1) if isinstance(down, int) else list(down)
    if hw % math.prod(strides) == 0:
        return kwargs
    return {**kwargs, "downsample": [2] + [1] * (n - 1)}


def _one(cfg):
    "Run one configuration in this process; returns its figures."
    import torch
    from nowcast.losses import nowcast_loss
    from nowcast.train import amp_policy, apply_channels_last, backward, forward_loss, model_from_params
    torch.manual_seed(0)
    dev = torch.device(cfg["device"])
    if dev.type == "cpu":
        torch.set_num_threads(cfg.get("threads", os.cpu_count()))
    b, n_in, n_out, z, h, w = cfg["batch"], cfg["n_in"], cfg["n_out"], cfg["z"], cfg["h"], cfg["w"]
    model = model_from_params({"model": {"name": cfg["model"], **cfg["kwargs"]}}, z, n_in, n_out)[0].to(dev)
    if cfg.get("channels_last"):
        model = apply_channels_last(model)
    dtype, use_scaler = amp_policy(dev.type, cfg["amp"], dev.type == "cuda" and torch.cuda.is_bf16_supported())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(dev.type, enabled=use_scaler)
    norm = {"dbz_min": -10.0, "dbz_max": 70.0}
    loss_fn = lambda p, t, v: nowcast_loss(p, t, v, norm=norm, high_threshold_dbz=40.0, high_penalty_weight=50.0,
                                           ssim_weight=20.0, huber_delta_dbz=4.0)
    g = torch.Generator().manual_seed(0)
    batch = (torch.rand(b, n_in, z, h, w, generator=g), torch.rand(b, n_out, z, h, w, generator=g),
             torch.ones(b, n_out, z, h, w, dtype=torch.bool))

    def step():
        loss, _ = forward_loss(model, batch, loss_fn, autocast_dtype=dtype, device=dev, channels_last=cfg.get("channels_last", False))
        backward(loss, 1.0, scaler if use_scaler else None)
        if use_scaler:
            scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        (scaler.step(opt), scaler.update()) if use_scaler else opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    first = None
    if cfg.get("warmup", True):   # a warm-up step (allocations, cuDNN algorithm choice) outside the timing
        t0 = time.perf_counter(); step(); first = round(time.perf_counter() - t0, 3)
    if dev.type == "cuda":
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(cfg["steps"]):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    out = {"samples_per_s": round(cfg["steps"] * b / dt, 3), "s_per_step": round(dt / cfg["steps"], 3),
           "first_step_s": first, "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
           "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 4), "amp": str(dtype).replace("torch.", "") if dtype else "fp32"}
    if dev.type == "cuda":
        out["cuda_max_allocated_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        out["cuda_gb_per_sample"] = round(out["cuda_max_allocated_gb"] / b, 3)
    return out


def run(cfg, timeout):
    "Run `_one(cfg)` in a subprocess; a timeout or an out-of-memory is recorded, not raised."
    t0 = time.time()
    try:
        res = subprocess.run([sys.executable, __file__, "--one", json.dumps(cfg)], capture_output=True, text=True,
                             timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {**cfg, "error": f"timed out after {timeout} s"}
    if res.returncode != 0:
        tail = res.stderr.strip().splitlines()[-1:] or [f"exit {res.returncode}"]
        return {**cfg, "error": tail[0][:300]}
    return {**cfg, **json.loads(res.stdout.strip().splitlines()[-1]), "wall_s": round(time.time() - t0, 1)}


def _largest_batch(base, timeout, hi=256):
    "Binary search of the largest batch that trains without CUDA out-of-memory."
    lo, best = 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        r = run({**base, "batch": mid, "steps": 1}, timeout)
        if "error" in r:
            hi = mid - 1
        else:
            best, lo = mid, mid + 1
    return best


def _pipeline_rows(params, workers=(0, 2), batches=30, events=2, batch_size=None):
    """The real training loop (`nowcast.train.train_phase`: the cache's uint8 codes through the loader, decoded on the
    device) on an embedded-scale cache: samples/s and the share of step time spent waiting for data."""
    import copy, tempfile
    from nowcast.data import prepare_from_params
    from nowcast.synthetic import make_archive
    from nowcast.train import train_phase
    rows = []
    with tempfile.TemporaryDirectory() as d:
        p = copy.deepcopy(params)
        syn = {k: v for k, v in p["synthetic"].items() if k != "out_dir"}
        syn["events"] = {"advection": events, "multicell": events, "supercell": events}
        make_archive(Path(d) / "data", **syn)
        p["data"]["raw_dir"], p["prepare"]["cache_dir"] = str(Path(d) / "data"), str(Path(d) / "cache")
        prepare_from_params(p)
        for w in workers:
            q = copy.deepcopy(p)
            q["train"].update(num_workers=w, max_batches_per_epoch=batches, max_val_windows=8, log_every_s=1e9,
                              ckpt_dir=str(Path(d) / f"ck{w}"), log_dir=str(Path(d) / f"lg{w}"))
            q["phase1"]["epochs"] = 1
            if batch_size: q["train"].update(batch_size=batch_size, max_val_windows=batch_size)
            s = train_phase(q, "phase1", root=d)
            rows.append({"scale": "embedded, real loader", "device": s["device"], "model": q["model"]["name"],
                         "batch": q["train"]["batch_size"], "n_in": q["prepare"]["n_in"], "n_out": q["prepare"]["n_out"],
                         "z": syn["nz"], "h": syn["ny"] // q["prepare"]["pool"], "w": syn["nx"] // q["prepare"]["pool"],
                         "amp": s["amp_dtype"], "workers": w, "samples_per_s": round(s["final"]["samples_per_s"], 2),
                         "data_wait_frac": round(s["final"]["data_wait_frac"], 3)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="fewer steps")
    ap.add_argument("--full-cpu-batch", type=int, default=1, help="batch at full scale on the CPU (16 takes far too long there)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per configuration")
    ap.add_argument("--no-cpu", action="store_true", help="skip the CPU part")
    ap.add_argument("--search", action="store_true", help="CUDA: binary search of the largest batch")
    args = add_output_args(ap).parse_args(argv)
    if args.one:
        print(json.dumps(_one(json.loads(args.one))))
        return 0
    import torch
    params = _load_yaml(ROOT / "params.yaml")
    full_path = ROOT / "params-full.yaml"
    full = _load_yaml(full_path) if full_path.exists() else None
    pp = params["prepare"]; syn = params["synthetic"]
    demo_shape = dict(n_in=pp["n_in"], n_out=pp["n_out"], z=syn["nz"], h=syn["ny"] // pp["pool"], w=syn["nx"] // pp["pool"])
    full_shape = dict(n_in=8, n_out=7, z=18, h=250, w=250)
    full_model = (full or {}).get("model", {})
    steps = 1 if args.smoke else 2 if args.quick else 5
    rows, notes = [], []
    if not args.no_cpu:
        rows += (_pipeline_rows(params, workers=(0,), batches=2, events=1, batch_size=1) if args.smoke else
                 _pipeline_rows(params, batches=10 if args.quick else 30))
    for name in ("AdvectionNet", "ConvLSTM", "ConvLSTM3D_Enhanced"):
        demo_kw = _model_kwargs(name, params["model"])
        full_kw = _model_kwargs(name, full_model)   # {} without params-full.yaml: the model defaults
        fitted = _fit_grid(name, full_kw, full_shape["h"])
        if fitted != full_kw:
            notes.append(f"{name} at full scale: downsample {fitted['downsample']} (its default strides need H, W divisible "
                         f"by more than 250 allows)")
        full_kw = fitted
        if not args.no_cpu:
            rows.append(run({"scale": "demo", "device": "cpu", "model": name, "kwargs": demo_kw, "amp": "off",
                             "batch": 1 if args.smoke else params["train"]["batch_size"], "steps": steps,
                             "warmup": not args.smoke, **demo_shape},
                            args.timeout))
            print(json.dumps(rows[-1]), flush=True)
        if not args.no_cpu and not args.smoke:   # a full-scale step on the CPU takes seconds to minutes
            rows.append(run({"scale": "full", "device": "cpu", "model": name, "kwargs": full_kw, "amp": "off",
                             "batch": args.full_cpu_batch, "steps": 1, "warmup": False, **full_shape}, args.timeout))
            print(json.dumps(rows[-1]), flush=True)
        if torch.cuda.is_available() and not args.smoke:
            for b in (16, 32):
                rows.append(run({"scale": "full", "device": "cuda", "model": name, "kwargs": full_kw, "amp": "bf16",
                                 "channels_last": True, "batch": b, "steps": steps, **full_shape}, args.timeout))
                print(json.dumps(rows[-1]), flush=True)
            if args.search:
                base = {"scale": "full", "device": "cuda", "model": name, "kwargs": full_kw, "amp": "bf16",
                        "channels_last": True, **full_shape}
                rows.append({**base, "largest_batch": _largest_batch(base, args.timeout)})
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU {platform.processor() or platform.machine()}"
    report = {"device": device, "cpu_count": os.cpu_count(), "torch": torch.__version__,
              "model_config_source": str(full_path.name) if full else "model defaults (no params-full.yaml)",
              "note": f"full scale on the CPU: batch {args.full_cpu_batch}, a single timed step without warm-up (batch 16 would take "
                      f"far over 2 minutes a step and, for the 3-D model, well over 16 GB); the CPU is shared, so figures vary with its load",
              "notes": notes, "load_average": os.getloadavg(), "rows": rows}
    out = output_dir(args)
    (out / "bench_train.json").write_text(json.dumps(report, indent=2))
    lines = [f"# Training benchmark\n", f"Device: **{device}** ({os.cpu_count()} CPU cores visible), torch {torch.__version__}.",
             f"Full-scale model config: {report['model_config_source']}. {report['note']}.",
             *[f"{n}." for n in notes], f"Load average at the end: {os.getloadavg()[0]:.1f}.\n",
             "The first rows run the real training loop (`nowcast.train`, uint8 codes through the loader, decoded on the "
             "device) on an embedded-scale cache; *data wait* is the share of the step time spent waiting for the loader "
             "(as logged in dvclive's `data_wait_frac` every epoch). The other rows time the training step alone on random windows.\n",
             "| scale | device | model | shape (B, T_in+T_out, Z, H, W) | amp | loader workers | samples/s | data wait | s/step | peak RSS GB | CUDA GB | CUDA GB/sample | largest batch |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        shape = f"{r.get('batch', '-')}, {r['n_in']}+{r['n_out']}, {r['z']}, {r['h']}, {r['w']}"
        wait = f"{r['data_wait_frac']:.1%}" if "data_wait_frac" in r else ""
        if "error" in r:
            lines.append(f"| {r['scale']} | {r['device']} | {r['model']} | {shape} | {r['amp']} | | {r['error']} | | | | | | |")
        else:
            lines.append(f"| {r['scale']} | {r['device']} | {r['model']} | {shape} | {r.get('amp')} | {r.get('workers', '')} | "
                         f"{r.get('samples_per_s', '')} | {wait} | {r.get('s_per_step', '')} | {r.get('peak_rss_gb', '')} | "
                         f"{r.get('cuda_max_allocated_gb', '')} | {r.get('cuda_gb_per_sample', '')} | {r.get('largest_batch', '')} |")
    (out / "bench_train.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
