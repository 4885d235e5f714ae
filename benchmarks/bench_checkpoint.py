"""How long a full-scale checkpoint takes to write: the figure behind the `docker stop -t` grace in the README.

    .venv/bin/python benchmarks/bench_checkpoint.py [--repeats 5] [--device cpu|cuda] [--smoke] [--out-dir DIR]

For each model of the full-scale params (`params-full.yaml`'s AdvectionNet and, with `model.name`, the users'
ConvLSTM3D_Enhanced), builds the model as the training stage does (`nowcast.train.model_from_params`, sized for
the 18 levels of 8 + 7 scan windows), gives AdamW its state (one step), puts together the dict `fit` writes
(weights, optimizer, schedule, RNG states, params, progress) and writes it with the training's own writer
(`nowcast.train.save_checkpoint`: temp file + rename) into a temporary folder: bytes, seconds per write
(median of the repeats), the same write followed by fsync (on disk, not only in the page cache), the three
writes at the end of an epoch (best, epoch_NNN, last), and a load (`load_checkpoint`, the resume). Writes
reports/bench_checkpoint.json and reports/bench_checkpoint.md (`--out-dir`). `--smoke` does the same with the
embedded params (params.yaml) and one write per figure."""
import argparse, json, os, platform, statistics, sys, tempfile, time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nowcast.inference import load_checkpoint  # noqa: E402
from nowcast.train import PhaseSchedule, model_from_params, rng_state, save_checkpoint  # noqa: E402
from _smoke import add_output_args, output_dir  # noqa: E402

MODELS = ["AdvectionNet", "ConvLSTM3D_Enhanced"]


def model_params(name: str, params_file: str = "params-full.yaml") -> dict:
    "The params file with `model.name` set to `name`."
    params = yaml.safe_load((ROOT / params_file).read_text())
    params["model"]["name"] = name
    return params


def training_checkpoint(params: dict, device: torch.device) -> tuple[dict, int]:
    "The dict `fit` writes for phase 1 of `params`, with AdamW's state filled in; and the model's parameter count."
    prep = params["prepare"]
    model, config = model_from_params(params, int(params["synthetic"]["nz"]), int(prep["n_in"]), int(prep["n_out"]))
    model = model.to(device)
    tp, pp = params["train"], params["phase1"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(pp["lr"]), weight_decay=float(tp["weight_decay"]))
    for p in model.parameters(): p.grad = torch.zeros_like(p)
    optimizer.step()                                       # AdamW's exp_avg and exp_avg_sq now exist for every weight
    schedule = PhaseSchedule(optimizer, float(pp["lr"]), pp["scheduler"], int(tp["warmup_steps"]), 10_000)
    ck = {"model": model.state_dict(), "model_config": config, "params": params, "phase": "phase1", "epoch": 3,
          "step": 1000, "best_val": 0.1, "optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict(),
          "scaler": {}, "rng": rng_state(), "finished": False,
          "progress": {"next_epoch": 3, "batch": 500, "skipped": 0, "epoch_log": {}}, "amp": "bf16", "world_size": 1}
    return ck, sum(p.numel() for p in model.parameters())


def _timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); out.append(time.perf_counter() - t0)
    return out


def _fsynced(path: Path):
    with open(path, "rb+") as f: os.fsync(f.fileno())


def measure(name: str, device: torch.device, repeats: int, folder: Path, params_file: str = "params-full.yaml") -> dict:
    "The figures of one model."
    ck, n_params = training_checkpoint(model_params(name, params_file), device)
    last = folder / f"{name}_last.pt"
    save_checkpoint(ck, last)                              # one write outside the timing (allocations, page cache)
    save = _timed(lambda: save_checkpoint(ck, last), repeats)
    to_disk = _timed(lambda: _fsynced(save_checkpoint(ck, last)), repeats)
    epoch_end = _timed(lambda: [save_checkpoint(ck, folder / f"{name}_{k}.pt") for k in ("best", "epoch_003", "last")],
                       repeats)
    load = _timed(lambda: load_checkpoint(last), repeats)
    return {"model": name, "device": str(device), "parameters": n_params, "bytes": last.stat().st_size,
            "save_s": round(statistics.median(save), 3), "save_s_max": round(max(save), 3),
            "save_fsync_s": round(statistics.median(to_disk), 3), "epoch_end_s": round(statistics.median(epoch_end), 3),
            "load_s": round(statistics.median(load), 3)}


def _cpu_full_steps() -> list[dict]:
    "The full-scale CPU step times of reports/bench_train.json (batch 1), if that benchmark has run."
    f = ROOT / "reports/bench_train.json"
    rows = json.loads(f.read_text())["rows"] if f.is_file() else []
    return [r for r in rows if r.get("scale") == "full" and r.get("device") == "cpu" and r.get("model") in MODELS]


def report(rows: list[dict], meta: dict) -> str:
    "The markdown page."
    worst = max(r["epoch_end_s"] for r in rows)
    lines = ["# Checkpoint write benchmark", "",
             f"Device: **{meta['device']}**, torch {meta['torch']}, {meta['cpus']} CPU cores visible; disk: the temporary "
             f"folder `{meta['tmp']}` (a local disk; a network volume is slower). Median of {meta['repeats']} writes after "
             "one untimed write. The dict has the keys `fit` writes (weights, AdamW state, schedule, RNG states, params, "
             "progress); the writer is `nowcast.train.save_checkpoint` (temp file + rename, no fsync).", "",
             "| model | parameters | checkpoint MB | save s | save s (max) | save + fsync s | epoch end (3 files) s | load s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['parameters']:,} | {r['bytes'] / 1e6:.1f} | {r['save_s']} | {r['save_s_max']} | "
                     f"{r['save_fsync_s']} | {r['epoch_end_s']} | {r['load_s']} |")
    cpu_steps = ", ".join(f"{r['model']} {r['s_per_step']:.0f} s" for r in _cpu_full_steps())
    lines += ["", "## The `docker stop -t` grace", "",
              "After SIGTERM, `nowcast train` finishes the optimizer step it is in and writes `<phase>_last.pt`: one "
              f"write, at most {max(r['save_s_max'] for r in rows):.2f} s here. A signal during the end-of-epoch "
              f"validation waits for that pass and the epoch's three writes ({worst:.2f} s here). The writes are a "
              "fraction of a second at full scale; the grace is for the step and the validation pass, and those were "
              "**not measured**: there is no GPU on this machine. On the users' H200 an optimizer step is 2 "
              "micro-batches of 16 full-scale windows (`benchmarks/bench_train.py` times it on a GPU: its CUDA rows); "
              f"on this CPU one window's step takes {cpu_steps or 'see reports/bench_train.md'} "
              "(reports/bench_train.md). A GPU is far faster, but by how much is an estimate.", "",
              "So the README asks for `docker stop -t 300`, five minutes for one step, one validation pass and "
              "three writes that take under a second: room to spare unless a step takes minutes or validation "
              "covers thousands of windows. Then raise `-t`, or cap validation with `train.max_val_windows`. "
              "Whatever the grace, `train.checkpoint_every_min` bounds what a kill at its end loses.", "",
              f"Command: `{meta['command']}` (models from {meta['params']}).", ""]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="writes timed per figure (median)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="where the model and optimizer live (cuda: the write includes the copy to the host)")
    args = add_output_args(ap).parse_args(argv)
    device = torch.device(args.device)
    params_file, repeats = ("params.yaml", 1) if args.smoke else ("params-full.yaml", args.repeats)
    with tempfile.TemporaryDirectory(prefix="bench_checkpoint_") as tmp:
        rows = [measure(name, device, repeats, Path(tmp), params_file) for name in MODELS]
        meta = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU {platform.machine()}",
                "torch": torch.__version__, "cpus": os.cpu_count(), "tmp": tempfile.gettempdir(), "repeats": repeats,
                "params": params_file, "command": " ".join(["python benchmarks/bench_checkpoint.py", *sys.argv[1:]])}
    out = output_dir(args)
    (out / "bench_checkpoint.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    md = report(rows, meta)
    (out / "bench_checkpoint.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
