"""The embedded model's skill over training seeds and CPU float paths: is the conclusion a result or a draw?

    .venv/bin/python benchmarks/bench_robustness.py [--params params.yaml] [--set KEY=VALUE] [--seeds 42 11 23]
                                                    [--paths pinned native aten-scalar mkl-avx2] [--work DIR] [--smoke]

Builds the archive and the window cache of `--params` once (they do not depend on the training seed), scores
the baselines once, then for every float path and seed trains the three curriculum phases with `nowcast train`
and scores the model with `nowcast evaluate` on the test events, each in a process of its own: the same
commands `dvc repro` runs. The float path is chosen through the environment, as `nowcast.floatpath` reads it:
`pinned` is the path the pipeline trains on everywhere (ATen AVX2, oneDNN up to AVX2, MKL's COMPATIBLE branch,
2 threads); `native` the machine's own (`NOWCAST_FLOAT_PATH=native`: AVX-512 here, MKL's automatic branch);
`aten-scalar` the machine's own with ATen's vector kernels off (`ATEN_CPU_CAPABILITY=default`); `mkl-avx2` ATen
and oneDNN at AVX2 with MKL's AVX2 branch (`MKL_CBWR=AVX2`, Intel's own). Writes `reports/robustness.md` and `.json`: CSI at 20/35/40 dBZ per lead for the
model (mean, min and max over the runs) beside each baseline, and which leads hold in every run.
A run whose evaluation is already in `--work` is not run again (`--fresh` starts over), so a pre-empted
benchmark goes on where it stopped. About 4 to 6 minutes per run on a 2-core Intel Xeon (the machine's own AVX-512
path the fastest, ATen without vector kernels the slowest).

`--smoke` runs the same steps on a tiny archive (one seed, one path, an epoch of two batches per phase) in
a temporary folder and writes nothing under reports/.
"""
import argparse, copy, csv, json, os, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _smoke import shown_command, write_reports  # noqa: E402
from nowcast.floatpath import cpu_name  # noqa: E402
from nowcast.report import recipe  # noqa: E402   the key the run summary finds this benchmark by
from nowcast.train import apply_overrides  # noqa: E402
THRESHOLDS = (35, 40, 20)


PATHS = ("pinned", "native", "aten-scalar", "mkl-avx2")


def float_paths() -> dict:
    "Environment per float path name: the pinned path, the machine's own, ATen without vector kernels, MKL's AVX2 branch."
    native = {"NOWCAST_FLOAT_PATH": "native"}   # the `nowcast` command then leaves the variables below as they are
    return {"pinned": {}, "native": native, "aten-scalar": {**native, "ATEN_CPU_CAPABILITY": "default"},
            "mkl-avx2": {**native, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}}


def capability(env: dict) -> str:
    "The instruction set PyTorch's CPU kernels use under `env` (asked of a fresh process pinned as `nowcast` pins it)."
    code = "from nowcast.floatpath import pin_float_path; pin_float_path(); import torch; print(torch.backends.cpu.get_cpu_capability())"
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
                          check=True).stdout.strip()


def nowcast(args: list, cwd: Path, env: dict, log: Path):
    "Run `nowcast ARGS` as the pipeline does (the package's own entry point), its output into `log`."
    with open(log, "a") as f:
        res = subprocess.run([sys.executable, "-m", "nowcast.cli", *map(str, args)], cwd=cwd, env={**os.environ, **env},
                             stdout=f, stderr=subprocess.STDOUT)
    if res.returncode:
        tail = "".join(log.read_text().splitlines(True)[-15:])
        sys.exit(f"{tail}nowcast {' '.join(map(str, args))} failed (exit {res.returncode}); log: {log}")


def smoke_params(params: dict) -> dict:
    "The same steps at the smallest scale: a tiny archive (that of the pipeline's tests), an epoch or two per phase."
    p = copy.deepcopy(params)
    p["synthetic"].update(nx=32, ny=32, nz=3, dx_km=3.0, scans_per_event=17, events={"advection": 1, "multicell": 1, "supercell": 1})
    p["prepare"].update(n_in=4, n_out=3, stride=2, split={"train": 0.34, "val": 0.33, "test": 0.33})
    p["model"].update(hidden=[4, 4], downsample=[2, 2], groups=2)
    p["train"].update(batch_size=4, warmup_steps=2, max_val_windows=4)
    for n, ph in enumerate(("phase1", "phase2", "phase3"), 1): p[ph]["epochs"] = n
    p["evaluate"].update(max_windows=4, fss_scales=[1, 3])
    return p


def synthetic_smoke_params(params: dict, **prepare) -> dict:
    """`smoke_params` on the synthetic archive whatever archive `params` names (a real-radar file too): its pixel kept
    (`pixel_km` None, `pool` 1); `prepare` overrides more of `prepare:` (e.g. `split`)."""
    p = smoke_params(params)
    p["data"]["raw_dir"] = p["synthetic"]["out_dir"]
    p["prepare"].update(pool=1, pixel_km=None, **prepare)
    return p


def read_scores(path: Path) -> dict:
    "{method: {threshold: [CSI per lead]}} of the column maximum from an evaluation's scores.csv."
    out = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            if r["field"] != "cmax": continue
            out.setdefault(r["method"], {}).setdefault(int(float(r["threshold_dbz"])), []).append(
                (float(r["lead_min"]), float(r["csi"]) if r["csi"] not in ("", "nan") else float("nan")))
    return {m: {t: [c for _, c in sorted(v)] for t, v in th.items()} for m, th in out.items()}


def kept_epochs(run_dir: Path) -> list:
    "The epoch each phase keeps as its best, or 'start' where no epoch beat the weights it started from."
    kept = []
    for ph in ("phase1", "phase2", "phase3"):
        s = json.loads((run_dir / "reports" / f"{ph}_train.json").read_text())
        best, first = s.get("best_epoch"), (s.get("epochs") or [None])[0]
        kept.append("start" if best is not None and first is not None and best < first else best)
    return kept


def train_and_score(work: Path, params_path: Path, name: str, seed: int, env: dict) -> dict:
    "One run: the three phases, then the model alone on the test events."
    run = work / "runs" / name
    scores = run / "eval" / "evaluation" / "scores.csv"
    if not scores.is_file():
        run.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        for ph in ("phase1", "phase2", "phase3"):
            nowcast(["train", "--params", params_path, "--phase", ph, "--root", run, "--set", f"seed={seed}",
                     "--set", "train.log_every_s=600"], work, env, run / "train.log")
        (run / "train_wall_s.txt").write_text(f"{time.time() - t0:.0f}\n")
        nowcast(["evaluate", "--params", work / "params-model.yaml", "--model-path", run / "checkpoints/phase3_best.pt",
                 "--reports-dir", run / "eval"], work, env, run / "evaluate.log")
    return {"name": name, "seed": seed, "csi": read_scores(scores)["model"], "kept_epochs": kept_epochs(run),
            "train_wall_s": float((run / "train_wall_s.txt").read_text())}


def prepare(work: Path, params: dict, log: Path):
    "The archive, the cache and the baselines' scores: one of each, whatever the seed."
    params = copy.deepcopy(params)
    params["prepare"]["cache_dir"] = str(work / "cache")
    src = params.get("radar_import", {}).get("source_dir")   # the real records: relative to the repository, not to --work
    if src and not Path(src).is_absolute(): params["radar_import"]["source_dir"] = str((ROOT / src).resolve())
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    model_only = copy.deepcopy(params); model_only["evaluate"]["methods"] = []
    (work / "params-model.yaml").write_text(yaml.safe_dump(model_only, sort_keys=False))
    if not (work / "cache").is_dir():
        nowcast(["archive", "--params", "params.yaml"], work, {}, log)
        nowcast(["prepare", "--params", "params.yaml"], work, {}, log)
    if not (work / "baselines/evaluation/scores.csv").is_file():
        nowcast(["evaluate", "--params", "params.yaml", "--model-path", "none", "--reports-dir", "baselines"], work, {}, log)
    scored = read_scores(work / "baselines/evaluation/scores.csv")
    return work / "params.yaml", {m: scored[m] for m in params["evaluate"]["methods"]}


def summarise(runs: list, baselines: dict) -> dict:
    "Mean, min and max of the model's CSI per threshold and lead, and the baselines each lead beats in every run."
    out, BASELINES = {}, list(baselines)
    for t in THRESHOLDS:
        leads = []
        for k in range(len(runs[0]["csi"][t])):
            vals = [r["csi"][t][k] for r in runs]
            base = {m: baselines[m][t][k] for m in BASELINES if m in baselines}
            leads.append({"lead_min": 5 * (k + 1), "mean": statistics.fmean(vals), "min": min(vals), "max": max(vals),
                          "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0, "baselines": base,
                          "beaten_in_every_run": [m for m, b in base.items() if min(vals) > b],
                          "runs_beating_all": sum(all(v > b for b in base.values()) for v in vals)})
        out[t] = leads
    return out


def held_sentence(leads: list, n_runs: int, t: int) -> list:
    "What held in every run at one threshold, in words."
    lines = []
    for m in leads[0]["baselines"]:
        missed = [l["lead_min"] for l in leads if m in l["baselines"] and m not in l["beaten_in_every_run"]]
        name = m.replace("_", " ")
        if not missed: lines.append(f"- In all {n_runs} runs the model beats {name} at every lead at {t} dBZ.")
        else: lines.append(f"- The model beats {name} at {t} dBZ in every run except at t+{', t+'.join(map(str, missed))} min, "
                           f"where at least one run falls to or below it.")
    return lines


def render(meta: dict, summary: dict, runs: list) -> str:
    n, BASELINES = len(runs), meta["baselines"]
    setting = f"`{meta['params']}`" + "".join(f", `{o}`" for o in meta.get("overrides", []))
    md = [f"# Robustness: the model of {setting} over seeds and float paths", "",
          f"Command: `{meta['command']}` ({meta['cpu']}, {meta['cores']} cores, torch {meta['torch']}; "
          f"{sum(r['train_wall_s'] for r in runs) / 60:.0f} min of training in all).", "",
          f"{n} runs: training seeds {', '.join(map(str, meta['seeds']))} (`seed` in params) on each float path; "
          f"every run trains the three phases of {setting} and scores the model on the same test events. "
          "The baselines do not depend on the seed and are scored once.", "",
          "| float path | environment | PyTorch kernels |", "|---|---|---|"]
    for p, d in meta["paths"].items():
        none = "(none: `nowcast` pins its own path)" if p == "pinned" else "(none: the machine default)"
        md.append(f"| {p} | {' '.join(f'{k}={v}' for k, v in d['env'].items()) or none} | {d['capability']} |")
    for t in THRESHOLDS:
        md += ["", f"## CSI at {t} dBZ (column maximum, test events)", "",
               "| lead (min) | model mean | model min | model max | " + " | ".join(BASELINES) + " | runs above every baseline |",
               "|---" * (5 + len(BASELINES)) + "|"]
        for l in summary[t]:
            md.append(f"| {l['lead_min']} | {l['mean']:.3f} | {l['min']:.3f} | {l['max']:.3f} | "
                      + " | ".join(f"{l['baselines'].get(m, float('nan')):.3f}" for m in BASELINES)
                      + f" | {l['runs_beating_all']} of {n} |")
        md += [""] + held_sentence(summary[t], n, t)
    md += ["", "## The runs", "", "| run | seed | mean CSI@35 | CSI@35, last lead | CSI@40, last lead | kept epochs (phase 1, 2, 3; start: the weights it started from) | training (s) |",
           "|---|---|---|---|---|---|---|"]
    for r in runs:
        md.append(f"| {r['name']} | {r['seed']} | {statistics.fmean(r['csi'][35]):.3f} | {r['csi'][35][-1]:.3f} | "
                  f"{r['csi'][40][-1]:.3f} | {', '.join(map(str, r['kept_epochs']))} | {r['train_wall_s']:.0f} |")
    means = [statistics.fmean(r["csi"][35]) for r in runs]
    md += ["", f"Mean CSI at 35 dBZ over leads: {statistics.fmean(means):.3f} (runs from {min(means):.3f} to {max(means):.3f}, "
           f"standard deviation {statistics.stdev(means) if n > 1 else 0.0:.3f})."]
    return "\n".join(md) + "\n"




def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 11, 23])
    ap.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    ap.add_argument("--work", default=None, help="where archive, cache, runs go (default: .bench/<name> in the repo)")
    ap.add_argument("--out-dir", default=str(ROOT / "reports"))
    ap.add_argument("--name", default="robustness", help="the report's name: <out-dir>/<name>.md and .json")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override a param for every run, e.g. --set train.ema_decay=0 (repeatable)")
    ap.add_argument("--fresh", action="store_true", help="remove this benchmark's own runs in --work first")
    ap.add_argument("--smoke", action="store_true", help="tiny archive, one seed and path, in a temporary folder")
    a = ap.parse_args(argv)
    params = apply_overrides(yaml.safe_load(Path(a.params).read_text()),
                             {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in a.sets)})
    tmp = None
    if a.smoke:
        params, a.seeds, a.paths = smoke_params(params), a.seeds[:1], a.paths[:1]
        tmp = tempfile.mkdtemp(prefix="nowcast-robustness-")
        work, out_dir = Path(tmp), Path(tmp) / "reports"
    else:
        work, out_dir = Path(a.work or ROOT / ".bench" / a.name).resolve(), Path(a.out_dir)
    if a.fresh and (work / "runs").is_dir(): shutil.rmtree(work / "runs")   # only what this benchmark wrote there
    work.mkdir(parents=True, exist_ok=True)
    try:
        params_path, baselines = prepare(work, params, work / "prepare.log")
        envs = float_paths()
        paths = {p: {"env": envs[p], "capability": capability(envs[p])} for p in a.paths}
        runs = []
        for p in a.paths:
            for s in a.seeds:
                runs.append(train_and_score(work, params_path, f"{p}-seed{s}", s, envs[p]))
                r = runs[-1]
                print(f"{r['name']}: CSI@35 {' / '.join(f'{c:.3f}' for c in r['csi'][35])}, kept epochs {r['kept_epochs']}", flush=True)
        summary = summarise(runs, baselines)
        meta = {"command": shown_command("bench_robustness.py", argv),
                "params": Path(a.params).name, "overrides": a.sets, "recipe": recipe(params), "baselines": list(baselines),
                "cpu": cpu_name(), "cores": os.cpu_count(), "torch": __import__("torch").__version__, "seeds": a.seeds,
                "paths": paths}
        text = render(meta, summary, runs)
        write_reports(out_dir, {f"{a.name}.md": text, f"{a.name}.json": json.dumps(
            {"meta": meta, "runs": runs, "baselines": baselines, "summary": {str(t): v for t, v in summary.items()}}, indent=1)})
        print(text)
    finally:
        if tmp: shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
