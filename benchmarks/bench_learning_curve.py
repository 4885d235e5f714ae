"""How much real radar does training need to add skill to its motion prior? A learning curve.

    .venv/bin/python benchmarks/bench_learning_curve.py [--params params-real.yaml] [--fractions 0.125 0.25 0.5 1]
                                                        [--set KEY=VALUE] [--boot 2000] [--work DIR] [--smoke]

Builds the archive, the window cache and the baselines' scores of `--params` once, then trains the three
curriculum phases (`nowcast train`, each phase in a process of its own, as `dvc repro` runs them) on nested
subsets of the training windows, with the same validation and test windows every time. A subset is cut
by time blocks: each radar's training windows are grouped into blocks of consecutive windows of one event
(an hour at 5 min), the blocks of each radar are put in one fixed random order, and the fraction f takes
the first ceil(f x blocks) of every radar (at least one), so each subset holds the one before it.

Every trained model and its starting weights (the prior: the model's Lucas-Kanade motion, untrained heads)
are scored on the test windows, as `nowcast evaluate` scores the column maximum, in units of one time block
(an hour of one event) by one 128 km square: the standard errors come from a bootstrap over those units
(storms 128 km apart grow and decay on their own) and, more cautious, over whole time blocks; never over
overlapping windows. Writes
`reports/learning_curve.md`, `.json` and `.png`. A subset already trained in `--work` is not trained again, nor scored again (runs of other `--set`s go under another `--name`).

`--smoke` runs the same steps on a tiny synthetic archive in a temporary folder and writes nothing under reports/.
"""
import argparse, copy, json, math, os, shutil, sys, tempfile, time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _smoke import shown_command, write_reports  # noqa: E402
from bench_robustness import cpu_name, kept_epochs, nowcast, prepare, read_scores, synthetic_smoke_params  # noqa: E402
from nowcast.data import load_cache  # noqa: E402
from nowcast.evaluate import model_forecaster, read_window  # noqa: E402
from nowcast.verification import column_max, contingency_by_lead  # noqa: E402
from nowcast.inference import load_model  # noqa: E402
from nowcast.train import apply_overrides, model_from_params  # noqa: E402

THRESHOLDS = (20, 35, 40)
BLOCK = 12  # windows per block: an hour of one event at 5 min


def blocks_of(index: dict, split: str, block: int = BLOCK) -> list:
    "[(radar, [window starts])]: the split's windows in runs of consecutive windows of one event, at most `block` each."
    scan_event, scan_radar = index["scan_event"], index["scan_radar"]
    out, cur, key = [], [], None
    for s in index["windows"][split]:
        k = scan_event[s]
        if cur and (k != key or len(cur) >= block or s - cur[-1] > index["event_step"][k] * 2):
            out.append((scan_radar[cur[0]], cur)); cur = []
        cur.append(int(s)); key = k
    if cur: out.append((scan_radar[cur[0]], cur))
    return out


def nested_subsets(blocks: list, fractions: list, seed: int) -> dict:
    "{fraction: sorted window starts}: each radar's blocks in one seeded order, the first ceil(f x n) of them (at least one)."
    rng = np.random.default_rng(seed)
    by_radar = {}
    for r, ws in blocks: by_radar.setdefault(r, []).append(ws)
    order = {r: [bs[i] for i in rng.permutation(len(bs))] for r, bs in sorted(by_radar.items())}
    return {f: sorted(s for bs in order.values() for b in bs[:max(1, math.ceil(f * len(bs)))] for s in b)
            for f in sorted(fractions)}


def subset_cache(cache: Path, dest: Path, train_starts: list) -> Path:
    "A cache folder that is `cache` with only `train_starts` as training windows (its data files linked, not copied)."
    dest.mkdir(parents=True, exist_ok=True)
    for p in cache.iterdir():
        if p.name != "index.json" and not (dest / p.name).exists(): (dest / p.name).symlink_to(p.resolve())
    index = json.loads((cache / "index.json").read_text())
    index["windows"]["train"] = [int(s) for s in train_starts]
    tmp = dest / ".index.json.tmp"
    tmp.write_text(json.dumps(index)); tmp.replace(dest / "index.json")
    return dest


def train_subset(work: Path, params: dict, name: str, label: str, starts: list, seed: int) -> Path:
    "Train the three phases on one subset (skipped when its last phase is already there); returns the run folder."
    run = work / "runs" / name / label
    best = run / "checkpoints" / "phase3_best.pt"
    if not best.is_file():
        p = copy.deepcopy(params)
        p["prepare"]["cache_dir"] = str(subset_cache(work / "cache", run / "cache", starts))
        (run / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
        t0 = time.time()
        for ph in ("phase1", "phase2", "phase3"):
            nowcast(["train", "--params", run / "params.yaml", "--phase", ph, "--root", run, "--set", f"seed={seed}",
                     "--set", "train.log_every_s=600"], work, {}, run / "train.log")
        (run / "train_wall_s.txt").write_text(f"{time.time() - t0:.0f}\n")
    return run


def prior_model(params: dict, cache):
    "The model as training starts it (seeded as `nowcast train` seeds it): its motion prior, heads untrained."
    import torch
    torch.manual_seed(int(params.get("seed", 0)))
    model, _ = model_from_params(params, cache.shape[1], cache.n_in, cache.n_out, cache.norm)
    return model.eval()


def unit_counts(cache, test_blocks: list, models: dict, tile: int, batch: int = 4) -> tuple:
    """Counts per bootstrap unit, `{method: array [units, thresholds, leads, 3 (hits, misses, false alarms)]}`, and each
    unit's time block: a unit is one `tile` x `tile` pixel square of one time block (scored as `Scoreboard` scores the
    column maximum: `column_max`, `contingency_by_lead`)."""
    forecasters = {m: model_forecaster(model, dbz_min=cache.norm["dbz_min"], dbz_max=cache.norm["dbz_max"])
                   for m, model in models.items()}
    units = {}
    for b, (_, starts) in enumerate(test_blocks):
        for i in range(0, len(starts), batch):   # a block is one event: one radar, one grid
            ws = [read_window(cache, s) for s in starts[i:i + batch]]
            fcs = {m: f.many(ws) for m, f in forecasters.items()}
            for j, w in enumerate(ws):
                obs, miss = column_max(w.obs, w.obs_missing)
                for m in models:
                    fc, _ = column_max(np.asarray(fcs[m][j], np.float32), np.zeros_like(w.obs_missing))
                    for ty in range(0, obs.shape[-2], tile):
                        for tx in range(0, obs.shape[-1], tile):
                            sl = (slice(None), slice(ty, ty + tile), slice(tx, tx + tile))
                            if miss[sl].all(): continue
                            c = contingency_by_lead(obs[sl], fc[sl], THRESHOLDS, miss[sl])[..., :3]   # [leads, T, 3]
                            u = units.setdefault((b, ty, tx), {k: 0 for k in models})
                            u[m] = u[m] + c.transpose(1, 0, 2).astype(float)
    keys = sorted(units)
    return {m: np.stack([units[k][m] for k in keys]) for m in models}, np.array([k[0] for k in keys])


def csi(c: np.ndarray) -> np.ndarray:
    "CSI from [..., 3] counts (NaN where nothing was observed or forecast)."
    with np.errstate(invalid="ignore", divide="ignore"):
        return c[..., 0] / (c[..., 0] + c[..., 1] + c[..., 2])


def bias(c: np.ndarray) -> np.ndarray:
    "Frequency bias (forecast / observed area) from [..., 3] counts."
    with np.errstate(invalid="ignore", divide="ignore"):
        return (c[..., 0] + c[..., 2]) / (c[..., 0] + c[..., 1])


def bootstrap_gain(model: np.ndarray, prior: np.ndarray, groups: np.ndarray, n_boot: int, seed: int) -> dict:
    """Mean CSI at 35 dBZ over leads, model minus prior, and its standard error from resampling the units (`se`: space-time
    tiles) and from resampling whole time blocks, every tile of a block together (`se_time`: hours, as events are)."""
    i35 = THRESHOLDS.index(35)
    per_lead = lambda idx: csi(model[idx, i35].sum(0)) - csi(prior[idx, i35].sum(0))
    gain = lambda idx: float(np.nanmean(csi(model[idx, i35].sum(0))) - np.nanmean(csi(prior[idx, i35].sum(0))))
    rng = np.random.default_rng(seed)
    n = model.shape[0]
    draws = [rng.integers(0, n, n) for _ in range(n_boot)]
    blocks = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    by_time = [np.concatenate([blocks[k] for k in rng.integers(0, len(blocks), len(blocks))]) for _ in range(n_boot)]
    return {"gain": gain(np.arange(n)), "se": float(np.std([gain(d) for d in draws], ddof=1)),
            "se_time": float(np.nanstd([gain(d) for d in by_time], ddof=1)),   # draws of hours without a core: no CSI
            "gain_by_lead": per_lead(np.arange(n)).tolist(),
            "se_by_lead": np.nanstd([per_lead(d) for d in draws], axis=0, ddof=1).tolist()}


def baseline_csi(work: Path, methods: list) -> dict:
    "{method: {threshold: [CSI per lead]}} of the baselines on the whole test split (scored once by `prepare`)."
    scored = read_scores(work / "baselines" / "evaluation" / "scores.csv")
    return {m: scored[m] for m in methods if m in scored}


def figure(path: Path, rows: list, baselines: dict, prior: dict):
    "Mean CSI at 35 dBZ over leads against training windows: trained (with 2 standard errors of its gain), prior, baselines."
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    n = [r["train_windows"] for r in rows]
    y = [r["mean_csi35"]["model"] for r in rows]
    ax.errorbar(n, y, yerr=[2 * r["gain"]["se"] for r in rows], marker="o", capsize=4, color="C3",
                label="delivered model (bars: 2 standard errors of its gain)")
    ax.errorbar(n, [float(np.nanmean(r["trained"]["csi35"])) for r in rows], yerr=[2 * r["trained"]["gain"]["se"] for r in rows],
                marker="s", ms=4, capsize=3, color="C5", ls=":", label="phase 1 as trained, before the checkpoint choice")
    ax.axhline(prior["mean_csi35"], color="k", lw=1.5, label="its starting weights (Lucas-Kanade prior)")
    for (m, v), c in zip(baselines.items(), ("C0", "C2", "C4", "C1")):
        ax.axhline(float(np.nanmean(v[35])), color=c, ls="--", lw=1, label=m.replace("_", " "))
    ax.set_xscale("log", base=2)
    ax.set_xticks(n, [str(k) for k in n])
    ax.set_xlabel("training windows (nested subsets, cut by hour-long blocks per radar)")
    ax.set_ylabel("CSI at 35 dBZ, mean over leads t+5..t+35")
    ax.set_title("Learning curve on real radar (test split)")
    ax.grid(alpha=0.3); ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp); plt.close(fig); tmp.replace(path)


def render(meta: dict, rows: list, prior: dict, baselines: dict, leads: list) -> str:
    md = [f"# Learning curve: training on real radar against the model's own motion prior", "",
          f"Command: `{meta['command']}` ({meta['cpu']}, {meta['cores']} cores, torch {meta['torch']}; "
          f"{meta['train_min']:.0f} min of training in all).", "",
          f"The real configuration (`{meta['params']}`{''.join(f', `{o}`' for o in meta['overrides'])}) trained on nested "
          f"subsets of its {meta['train_windows_all']} training windows: each radar's windows in blocks of {BLOCK} "
          "consecutive windows of one event (an hour), the blocks in one seeded order per radar, a subset the first "
          "fraction of every radar's blocks (at least one). Validation and test windows are the same every time "
          f"({meta['val_windows']} and {meta['test_windows']}). The prior is the model as training starts it: "
          "Lucas-Kanade motion of the inputs, learned heads at zero. Standard errors (SE): bootstrap "
          f"({meta['boot']} resamples) over the {meta['test_units']} test units, each one {meta['tile_km']:g} km square of one "
          f"of the {meta['test_blocks']} time blocks (an hour of one event), so that storms far apart count apart; "
          f"SE (hours) resamples whole time blocks instead, every square of an hour together ({meta['blocks_with_cores']} of the "
          f"{meta['test_blocks']} hours observe 35 dBZ at all). Never over overlapping windows.",
          "", "![learning curve](learning_curve.png)", "",
          "## Gain over the prior at 35 dBZ", "",
          "| subset | training windows | blocks | kept epochs (phase 1, 2, 3) | mean CSI@35 trained | prior | gain | SE | gain / SE | SE (hours) |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        g = r["gain"]
        md.append(f"| {r['label']} | {r['train_windows']} | {r['train_blocks']} | {', '.join(map(str, r['kept_epochs']))} | "
                  f"{r['mean_csi35']['model']:.3f} | {prior['mean_csi35']:.3f} | {g['gain']:+.3f} | {g['se']:.3f} | "
                  f"{g['gain'] / g['se'] if g['se'] > 0 else float('nan'):+.1f} | {g['se_time']:.3f} |")
    md += ["", "What training made of the weights, before the checkpoint choice: phase 1's last epoch (`phase1_last.pt`, "
           f"{meta['phase1_epochs']} epochs at the highest learning rate of the curriculum) against the same prior on the same test units.", "",
           "| subset | mean CSI@35 | gain over the prior | SE | SE (hours) | frequency bias at 35 dBZ, t+5 .. t+35 |", "|---|---|---|---|---|---|"]
    for r in rows:
        g = r["trained"]["gain"]
        md.append(f"| {r['label']} | {float(np.nanmean(r['trained']['csi35'])):.3f} | {g['gain']:+.3f} | {g['se']:.3f} | "
                  f"{g['se_time']:.3f} | {' '.join(f'{b:.2f}' for b in r['trained']['bias35'])} |")
    for t in THRESHOLDS:
        md += ["", f"## CSI at {t} dBZ per lead (column maximum, test split)", "",
               "| lead (min) | " + " | ".join(f"trained {r['label']}" for r in rows) + " | prior | "
               + " | ".join(m.replace("_", " ") for m in baselines) + " |", "|---" * (2 + len(rows) + len(baselines)) + "|"]
        for k, lead in enumerate(leads):
            md.append(f"| {lead:g} | " + " | ".join(f"{r['csi'][str(t)][k]:.3f}" for r in rows) + f" | {prior['csi'][str(t)][k]:.3f} | "
                      + " | ".join(f"{baselines[m][t][k]:.3f}" for m in baselines) + " |")
    md += ["", "## Frequency bias at 35 dBZ per lead (forecast area / observed area; 1 is right, below 1 erased cores)", "",
           "| lead (min) | " + " | ".join(f"trained {r['label']}" for r in rows) + " | prior |", "|---" * (2 + len(rows)) + "|"]
    for k, lead in enumerate(leads):
        md.append(f"| {lead:g} | " + " | ".join(f"{r['bias35'][k]:.2f}" for r in rows) + f" | {prior['bias35'][k]:.2f} |")
    md += ["", "## Gain per lead at 35 dBZ (trained minus prior, with its standard error)", "",
           "| lead (min) | " + " | ".join(f"{r['label']}" for r in rows) + " |", "|---" * (1 + len(rows)) + "|"]
    for k, lead in enumerate(leads):
        md.append(f"| {lead:g} | " + " | ".join(f"{r['gain']['gain_by_lead'][k]:+.3f} ± {r['gain']['se_by_lead'][k]:.3f}" for r in rows) + " |")
    return "\n".join(md) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=str(ROOT / "params-real.yaml"))
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.125, 0.25, 0.5, 1.0])
    ap.add_argument("--boot", type=int, default=2000, help="bootstrap resamples of the test units")
    ap.add_argument("--tile", type=int, default=64, help="bootstrap units: squares of this many model pixels (64: 128 km) of one time block")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override a param for every subset (repeatable)")
    ap.add_argument("--work", default=None, help="archive, cache, baselines, runs (default: .bench/learning_curve in the repo)")
    ap.add_argument("--out-dir", default=str(ROOT / "reports"))
    ap.add_argument("--name", default="learning_curve", help="<out-dir>/<name>.md, .json, .png; its runs in <work>/runs/<name>")
    ap.add_argument("--smoke", action="store_true", help="tiny synthetic archive, two subsets, in a temporary folder")
    a = ap.parse_args(argv)
    params = apply_overrides(yaml.safe_load(Path(a.params).read_text()),
                             {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in a.sets)})
    tmp = None
    if a.smoke:
        params = synthetic_smoke_params(params, split={"train": 0.5, "val": 0.25, "test": 0.25})
        params["synthetic"]["events"] = {"advection": 2, "multicell": 2, "supercell": 2}
        params["evaluate"]["methods"] = ["persistence", "optical_flow"]
        a.fractions, a.boot = [0.5, 1.0], 20
        tmp = tempfile.mkdtemp(prefix="nowcast-learning-curve-")
        work, out_dir = Path(tmp), Path(tmp) / "reports"
    else:
        work, out_dir = Path(a.work or ROOT / ".bench" / "learning_curve").resolve(), Path(a.out_dir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        params_path, _ = prepare(work, params, work / "prepare.log")
        params = yaml.safe_load(params_path.read_text())
        seed = int(params.get("seed", 0))
        index = json.loads((work / "cache" / "index.json").read_text())
        train_blocks, test_blocks = blocks_of(index, "train"), blocks_of(index, "test")
        subsets = nested_subsets(train_blocks, a.fractions, seed)
        runs = {f: train_subset(work, params, a.name, f"{f:g}", starts, seed) for f, starts in subsets.items()}
        cache = load_cache(work / "cache")
        models = {"prior": prior_model(params, cache),   # the prior; each subset's delivered model; its phase 1 as trained
                  **{f"{f:g}": load_model(run / "checkpoints" / "phase3_best.pt")[0] for f, run in runs.items()},
                  **{f"{f:g} trained": load_model(run / "checkpoints" / "phase1_last.pt")[0] for f, run in runs.items()}}
        saved = work / "runs" / a.name / f"test_counts_tile{a.tile}.npz"   # the scoring of these very runs, kept
        if saved.is_file() and set(np.load(saved).files) == {*models, "unit_block"}:
            with np.load(saved) as z: counts, unit_block = {m: z[m] for m in models}, z["unit_block"]
        else:
            counts, unit_block = unit_counts(cache, test_blocks, models, a.tile, int(params["evaluate"].get("batch_size", 4)))
            np.savez(saved.with_suffix(".tmp.npz"), unit_block=unit_block, **counts)
            saved.with_suffix(".tmp.npz").replace(saved)
        leads = [round((k + 1) * params["prepare"]["time_step_s"] / 60, 3) if params["prepare"].get("time_step_s")
                 else k + 1 for k in range(cache.n_out)]
        i35 = THRESHOLDS.index(35)
        total = {m: c.sum(0) for m, c in counts.items()}
        prior = {"csi": {str(t): csi(total["prior"][i]).tolist() for i, t in enumerate(THRESHOLDS)},
                 "bias35": bias(total["prior"][i35]).tolist(), "mean_csi35": float(np.nanmean(csi(total["prior"][i35])))}
        rows = []
        for f, run in runs.items():
            m = f"{f:g}"
            n_blocks = sum(1 for _, b in train_blocks if set(b) <= set(subsets[f]))
            rows.append({"label": m if f < 1 else "all", "fraction": f, "train_windows": len(subsets[f]), "train_blocks": n_blocks,
                         "kept_epochs": kept_epochs(run), "train_wall_s": float((run / "train_wall_s.txt").read_text()),
                         "csi": {str(t): csi(total[m][i]).tolist() for i, t in enumerate(THRESHOLDS)},
                         "bias35": bias(total[m][i35]).tolist(),
                         "mean_csi35": {"model": float(np.nanmean(csi(total[m][i35]))), "prior": prior["mean_csi35"]},
                         "gain": bootstrap_gain(counts[m], counts["prior"], unit_block, a.boot, seed),
                         "trained": {"csi35": csi(total[f"{m} trained"][i35]).tolist(), "bias35": bias(total[f"{m} trained"][i35]).tolist(),
                                     "gain": bootstrap_gain(counts[f"{m} trained"], counts["prior"], unit_block, a.boot, seed)}})
            print(f"subset {m}: {len(subsets[f])} windows, mean CSI@35 {rows[-1]['mean_csi35']['model']:.3f} "
                  f"(prior {prior['mean_csi35']:.3f}), gain {rows[-1]['gain']['gain']:+.3f} ± {rows[-1]['gain']['se']:.3f}", flush=True)
        baselines = baseline_csi(work, params["evaluate"]["methods"])
        meta = {"command": shown_command("bench_learning_curve.py", argv), "params": Path(a.params).name,
                "overrides": a.sets, "cpu": cpu_name(), "cores": os.cpu_count(), "torch": __import__("torch").__version__,
                "train_min": sum(r["train_wall_s"] for r in rows) / 60, "train_windows_all": len(index["windows"]["train"]),
                "val_windows": len(index["windows"].get("val", [])), "test_windows": len(index["windows"]["test"]),
                "test_blocks": len(test_blocks), "test_units": int(len(unit_block)), "tile_px": a.tile,
                "tile_km": a.tile * float(cache.grid.dx_km), "boot": a.boot, "leads_min": leads,
                "blocks_with_cores": int(len(np.unique(unit_block[counts["prior"][:, i35, :, :2].sum(axis=(1, 2)) > 0]))),
                "phase1_epochs": int(params["phase1"]["epochs"])}
        out_dir.mkdir(parents=True, exist_ok=True)
        figure(out_dir / f"{a.name}.png", rows, baselines, prior)
        text = render(meta, rows, prior, baselines, leads)
        write_reports(out_dir, {f"{a.name}.md": text, f"{a.name}.json": json.dumps(
            {"meta": meta, "rows": rows, "prior": prior, "baselines": baselines}, indent=1)})   # unit counts: the .npz in --work
        print(text)
    finally:
        if tmp: shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
