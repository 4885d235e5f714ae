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
overlapping windows.

Each delivered model also gets its probability head (`nowcast probability` with `fit_split: train`: fitted on the
model's forecasts of that subset's own training windows), and the head's probabilities and their untrained start
(the neighbourhood probability of the forecast) are scored on the same test units: the Brier skill score at 35 dBZ,
mean over leads, trained minus start, bootstrapped over the same units with the same seed. Writes
`reports/learning_curve.md`, `.json` and `.png`. A subset already trained in `--work` is not trained again, nor scored again (runs of other `--set`s go under another `--name`).

`--smoke` runs the same steps on a tiny synthetic archive in a temporary folder and writes nothing under reports/
(its reports go to `--out-dir` when one is given, else into the temporary folder).
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
from nowcast.probability import ProbabilityHead  # noqa: E402
from nowcast.probtrain import train_probability, window_fields  # noqa: E402
from nowcast.probverif import bss_from_sums, checked_probabilities, probability_sums, scored_pixels, window_sums  # noqa: E402
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


def scored_windows(cache, test_blocks: list, models: dict, batch: int = 4):
    "Yield `(block number, window, {method: forecast})` for every test window, each model forecasting `batch` windows at a time."
    forecasters = {m: model_forecaster(model, dbz_min=cache.norm["dbz_min"], dbz_max=cache.norm["dbz_max"])
                   for m, model in models.items()}
    for b, (_, starts) in enumerate(test_blocks):
        for i in range(0, len(starts), batch):   # a block is one event: one radar, one grid
            ws = [read_window(cache, s) for s in starts[i:i + batch]]
            fcs = {m: f.many(ws) for m, f in forecasters.items()}
            for j, w in enumerate(ws): yield b, w, {m: fcs[m][j] for m in models}


def tiles(miss: np.ndarray, tile: int):
    "`(ty, tx, slice)` of each `tile` x `tile` square of a `[leads, H, W]` field holding at least one observed pixel."
    for ty in range(0, miss.shape[-2], tile):
        for tx in range(0, miss.shape[-1], tile):
            sl = (slice(None), slice(ty, ty + tile), slice(tx, tx + tile))
            if not miss[sl].all(): yield ty, tx, sl


def by_unit(units: dict, names) -> tuple:
    "`{name: array [units, ...]}` from `{(block, ty, tx): {name: sums}}` in sorted unit order, and each unit's time block."
    keys = sorted(units)
    return {m: np.stack([units[k][m] for k in keys]) for m in names}, np.array([k[0] for k in keys])


def unit_counts(cache, test_blocks: list, models: dict, tile: int, batch: int = 4) -> tuple:
    """Counts per bootstrap unit, `{method: array [units, thresholds, leads, 3 (hits, misses, false alarms)]}`, and each
    unit's time block: a unit is one `tile` x `tile` pixel square of one time block (scored as `Scoreboard` scores the
    column maximum: `column_max`, `contingency_by_lead`)."""
    units = {}
    for b, w, fcs in scored_windows(cache, test_blocks, models, batch):
        obs, miss = column_max(w.obs, w.obs_missing)
        for m, fc in fcs.items():
            fc, _ = column_max(np.asarray(fc, np.float32), np.zeros_like(w.obs_missing))
            for ty, tx, sl in tiles(miss, tile):
                c = contingency_by_lead(obs[sl], fc[sl], THRESHOLDS, miss[sl])[..., :3]   # [leads, T, 3]
                u = units.setdefault((b, ty, tx), {k: 0 for k in models})
                u[m] = u[m] + c.transpose(1, 0, 2).astype(float)
    return by_unit(units, models)


def unit_brier(cache, test_blocks: list, models: dict, heads: dict, tile: int, batch: int = 4) -> tuple:
    """Brier sums per bootstrap unit (the units of `unit_counts`) of each model's probabilities, `{"<method> head"
    (trained), "<method> start" (untrained): [units, leads, head thresholds, 3 (sum (p - o)², sum o, pixels)]}`, and
    each unit's time block; pixels scored as `ProbBoard` scores them (`scored_pixels`, `probability_sums`)."""
    units = {}
    for b, w, fcs in scored_windows(cache, test_blocks, models, batch):
        for m, fc in fcs.items():
            f, last, obs, miss = window_fields(w, fc)
            valid, head = scored_pixels(obs, miss), heads[m]
            for kind, p in (("head", head(f, last)), ("start", head.start(f))):
                for ty, tx, sl in tiles(miss, tile):
                    probs = checked_probabilities(p[(slice(None),) + sl], valid[sl], f"{m} {kind}")
                    s = window_sums(probability_sums(obs[sl], valid[sl], probs, head.thresholds)).swapaxes(0, 1)
                    u = units.setdefault((b, ty, tx), {})
                    u[f"{m} {kind}"] = u.get(f"{m} {kind}", 0) + s
    return by_unit(units, [f"{m} {k}" for m in models for k in ("head", "start")])


def cached_units(path: Path, names: list, compute) -> tuple:
    "`compute()`'s `({name: array per unit}, unit blocks)`, kept in `path` and read back when it holds exactly `names`."
    if path.is_file():
        with np.load(path) as z:
            if set(z.files) == {*names, "unit_block"}: return {m: z[m] for m in names}, z["unit_block"]
    arrays, unit_block = compute()
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, unit_block=unit_block, **arrays); tmp.replace(path)
    return arrays, unit_block


def subset_head(run: Path) -> ProbabilityHead:
    """The probability head of a subset's delivered model, fitted (`fit_split: train`) on the model's forecasts of that
    subset's own training windows (its radii chosen on the validation windows); fitted once, kept in the run folder."""
    out = run / "checkpoints" / "probability_fit_train.pt"
    if not out.is_file():
        p = yaml.safe_load((run / "params.yaml").read_text())   # its cache: the subset's training windows
        p.setdefault("probability", {})["fit_split"] = "train"
        train_probability(p, run / "checkpoints" / "phase3_best.pt", out, run / "reports" / "probability_fit_train.json")
    return ProbabilityHead.load(out)


def csi(c: np.ndarray) -> np.ndarray:
    "CSI from [..., 3] counts (NaN where nothing was observed or forecast)."
    with np.errstate(invalid="ignore", divide="ignore"):
        return c[..., 0] / (c[..., 0] + c[..., 1] + c[..., 2])


def bias(c: np.ndarray) -> np.ndarray:
    "Frequency bias (forecast / observed area) from [..., 3] counts."
    with np.errstate(invalid="ignore", divide="ignore"):
        return (c[..., 0] + c[..., 2]) / (c[..., 0] + c[..., 1])


def bootstrap(gain, per_lead, groups: np.ndarray, n_boot: int, seed: int) -> dict:
    """A paired gain over units, `gain(unit indices) -> float` (and per lead, `per_lead(unit indices) -> [leads]`), and
    its standard error from resampling the units (`se`: space-time tiles) and from resampling whole time blocks, every
    tile of a block together (`se_time`: hours, as events are). The same seed draws the same resamples for every gain."""
    rng = np.random.default_rng(seed)
    n = len(groups)
    draws = [rng.integers(0, n, n) for _ in range(n_boot)]
    blocks = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    by_time = [np.concatenate([blocks[k] for k in rng.integers(0, len(blocks), len(blocks))]) for _ in range(n_boot)]
    return {"gain": gain(np.arange(n)), "se": float(np.std([gain(d) for d in draws], ddof=1)),
            "se_time": float(np.nanstd([gain(d) for d in by_time], ddof=1)),   # draws of hours without a core: no score
            "gain_by_lead": per_lead(np.arange(n)).tolist(),
            "se_by_lead": np.nanstd([per_lead(d) for d in draws], axis=0, ddof=1).tolist()}


def bootstrap_gain(model: np.ndarray, prior: np.ndarray, groups: np.ndarray, n_boot: int, seed: int) -> dict:
    "Mean CSI at 35 dBZ over leads, model minus prior (counts per unit, `unit_counts`), with its standard errors (`bootstrap`)."
    i35 = THRESHOLDS.index(35)
    per_lead = lambda idx: csi(model[idx, i35].sum(0)) - csi(prior[idx, i35].sum(0))
    gain = lambda idx: float(np.nanmean(csi(model[idx, i35].sum(0))) - np.nanmean(csi(prior[idx, i35].sum(0))))
    return bootstrap(gain, per_lead, groups, n_boot, seed)


def bootstrap_bss_gain(trained: np.ndarray, start: np.ndarray, k: int, groups: np.ndarray, n_boot: int, seed: int) -> dict:
    """Mean BSS over leads at the head's threshold `k`, trained probabilities minus their start (Brier sums per unit,
    `unit_brier`), with its standard errors from the resamples `bootstrap_gain` draws (`bootstrap`, same seed)."""
    bss = lambda sums, idx: bss_from_sums(sums[idx, :, k].sum(0))
    per_lead = lambda idx: bss(trained, idx) - bss(start, idx)
    gain = lambda idx: float(np.nanmean(bss(trained, idx)) - np.nanmean(bss(start, idx)))
    return bootstrap(gain, per_lead, groups, n_boot, seed)


def baseline_csi(work: Path, methods: list) -> dict:
    "{method: {threshold: [CSI per lead]}} of the baselines on the whole test split (scored once by `prepare`)."
    scored = read_scores(work / "baselines" / "evaluation" / "scores.csv")
    return {m: scored[m] for m in methods if m in scored}


def bss_panel(ax, rows: list):
    "The probabilities' side: the BSS gain at 35 dBZ of each subset's trained head over its start, with 2 standard errors."
    n = [r["train_windows"] for r in rows]
    ax.errorbar(n, [r["bss_gain"]["gain"] for r in rows], yerr=[2 * r["bss_gain"]["se"] for r in rows], marker="o",
                capsize=4, color="C3", label="trained head minus its start (bars: 2 standard errors)")
    ax.axhline(0, color="k", lw=1.5, label="the start: neighbourhood probability of the forecast")
    ax.set_xscale("log", base=2)
    ax.set_xticks(n, [str(k) for k in n])
    ax.set_xlabel("training windows (the head fitted on the same ones)")
    ax.set_ylabel("BSS gain at 35 dBZ, mean over leads")
    ax.set_title("Probabilities: what fitting the head adds")
    ax.grid(alpha=0.3); ax.legend(fontsize=7, loc="best")


def figure(path: Path, rows: list, baselines: dict, prior: dict):
    """Mean CSI at 35 dBZ over leads against training windows: trained (with 2 standard errors of its gain), prior,
    baselines; beside it the BSS gain of the trained probabilities over their start (`bss_panel`)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11.5, 4.2), dpi=120, gridspec_kw={"width_ratios": [3, 2]})
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
    bss_panel(bx, rows)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp); plt.close(fig); tmp.replace(path)


def render_bss(meta: dict, rows: list, leads: list) -> list:
    "The probabilities' section: how the heads were fitted, and the BSS at 35 dBZ per lead of each head and its start."
    pr, fit_s = meta["probability"], ", ".join(f"{r['head_fit_s']:.0f}" for r in rows)
    md = ["", "## Probabilities at 35 dBZ: the trained head against its start", "",
          "Each delivered model's probability head was fitted as `nowcast probability` fits it with `fit_split: train`: on the "
          f"model's forecasts of that subset's own training windows ({', '.join(str(r['head_fit_windows']) for r in rows)} "
          f"windows, {pr['pixels_per_window'] or 'all'} pixels drawn from each, {pr['iters']} L-BFGS iterations; "
          f"{fit_s} s), its start (the neighbourhood probability of the "
          f"forecast, a radius per lead) chosen on {rows[0]['head_val_windows']} validation windows. Both are scored on the "
          "same test units; the gain is the Brier skill score (against the sample climatology of the units drawn) of the "
          "trained probabilities minus that of their start, mean over leads, its SE from the resamples of the CSI's gain.", "",
          "| lead (min) | " + " | ".join(f"start {r['label']} | trained {r['label']}" for r in rows) + " |",
          "|---" * (1 + 2 * len(rows)) + "|"]
    for k, lead in enumerate(leads):
        md.append(f"| {lead:g} | " + " | ".join(f"{r['bss35']['start'][k]:.3f} | {r['bss35']['trained'][k]:.3f}" for r in rows) + " |")
    md.append("| gain ± SE | " + " | ".join(f" | {r['bss_gain']['gain']:+.3f} ± {r['bss_gain']['se']:.3f}" for r in rows) + " |")
    return md


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
          "| subset | training windows | blocks | kept epochs (phase 1, 2, 3) | mean CSI@35 trained | prior | gain | SE | gain / SE | "
          "SE (hours) | BSS gain of the trained probabilities over their start (SE) |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        g, b = r["gain"], r["bss_gain"]
        md.append(f"| {r['label']} | {r['train_windows']} | {r['train_blocks']} | {', '.join(map(str, r['kept_epochs']))} | "
                  f"{r['mean_csi35']['model']:.3f} | {prior['mean_csi35']:.3f} | {g['gain']:+.3f} | {g['se']:.3f} | "
                  f"{g['gain'] / g['se'] if g['se'] > 0 else float('nan'):+.1f} | {g['se_time']:.3f} | {b['gain']:+.3f} ({b['se']:.3f}) |")
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
    return "\n".join(md + render_bss(meta, rows, leads)) + "\n"


def score_units(work: Path, name: str, tile: int, params: dict, cache, test_blocks: list, runs: dict) -> tuple:
    """Per test unit: contingency counts of the prior, each subset's delivered model and its phase 1 as trained
    (`unit_counts`), and Brier sums of each delivered model's trained probabilities and their start (`unit_brier`);
    each unit's time block. Both kept in `<work>/runs/<name>` (the scoring of these very runs)."""
    models = {"prior": prior_model(params, cache),   # the prior; each subset's delivered model; its phase 1 as trained
              **{f"{f:g}": load_model(run / "checkpoints" / "phase3_best.pt")[0] for f, run in runs.items()},
              **{f"{f:g} trained": load_model(run / "checkpoints" / "phase1_last.pt")[0] for f, run in runs.items()}}
    batch, folder = int(params["evaluate"].get("batch_size", 4)), work / "runs" / name
    counts, unit_block = cached_units(folder / f"test_counts_tile{tile}.npz", list(models),
                                      lambda: unit_counts(cache, test_blocks, models, tile, batch))
    heads = {f"{f:g}": subset_head(run) for f, run in runs.items()}
    delivered = {m: models[m] for m in heads}
    briers, brier_block = cached_units(folder / f"test_brier_tile{tile}.npz", [f"{m} {k}" for m in heads for k in ("head", "start")],
                                       lambda: unit_brier(cache, test_blocks, delivered, heads, tile, batch))
    if not np.array_equal(unit_block, brier_block):
        raise RuntimeError(f"{folder}: the Brier sums' units differ from the counts' units: remove its test_*_tile{tile}.npz")
    return counts, briers, unit_block, heads


def subset_row(f: float, run: Path, subsets: dict, train_blocks: list, scored: tuple, prior: dict, boot: int, seed: int) -> dict:
    "One subset's line of the report: its size, kept epochs, CSI, bias and gains (CSI over the prior, BSS over the start)."
    counts, briers, unit_block, heads = scored
    m, i35 = f"{f:g}", THRESHOLDS.index(35)
    total = {k: counts[k].sum(0) for k in (m, f"{m} trained")}
    k35 = heads[m].thresholds.index(35.0)
    return {"label": m if f < 1 else "all", "fraction": f, "train_windows": len(subsets[f]),
            "train_blocks": sum(1 for _, b in train_blocks if set(b) <= set(subsets[f])),
            "kept_epochs": kept_epochs(run), "train_wall_s": float((run / "train_wall_s.txt").read_text()),
            "csi": {str(t): csi(total[m][i]).tolist() for i, t in enumerate(THRESHOLDS)},
            "bias35": bias(total[m][i35]).tolist(),
            "mean_csi35": {"model": float(np.nanmean(csi(total[m][i35]))), "prior": prior["mean_csi35"]},
            "gain": bootstrap_gain(counts[m], counts["prior"], unit_block, boot, seed),
            "trained": {"csi35": csi(total[f"{m} trained"][i35]).tolist(), "bias35": bias(total[f"{m} trained"][i35]).tolist(),
                        "gain": bootstrap_gain(counts[f"{m} trained"], counts["prior"], unit_block, boot, seed)},
            "bss35": {k: bss_from_sums(briers[f"{m} {n}"][:, :, k35].sum(0)).tolist() for k, n in (("trained", "head"), ("start", "start"))},
            "bss_gain": bootstrap_bss_gain(briers[f"{m} head"], briers[f"{m} start"], k35, unit_block, boot, seed),
            "head_fit_windows": int(heads[m].info.get("train_windows", 0)), "head_val_windows": int(heads[m].info.get("val_windows", 0)),
            "head_fit_s": float(heads[m].info.get("seconds", float("nan"))),
            "head_start_radius35": [int(r) for r in heads[m].start_radius[k35]]}


def meta_of(a, argv, params: dict, index: dict, cache, test_blocks: list, rows: list, counts: dict, unit_block, leads: list) -> dict:
    "What the report says about how it was made."
    i35, pr = THRESHOLDS.index(35), params.get("probability", {}) or {}
    return {"command": shown_command("bench_learning_curve.py", argv), "params": Path(a.params).name,
            "overrides": a.sets, "cpu": cpu_name(), "cores": os.cpu_count(), "torch": __import__("torch").__version__,
            "train_min": sum(r["train_wall_s"] for r in rows) / 60, "train_windows_all": len(index["windows"]["train"]),
            "val_windows": len(index["windows"].get("val", [])), "test_windows": len(index["windows"]["test"]),
            "test_blocks": len(test_blocks), "test_units": int(len(unit_block)), "tile_px": a.tile,
            "tile_km": a.tile * float(cache.grid.dx_km), "boot": a.boot, "leads_min": leads,
            "blocks_with_cores": int(len(np.unique(unit_block[counts["prior"][:, i35, :, :2].sum(axis=(1, 2)) > 0]))),
            "phase1_epochs": int(params["phase1"]["epochs"]),
            "probability": {"fit_split": "train", **{k: int(pr.get(k, d)) for k, d in
                            (("pixels_per_window", 256), ("max_fit_windows", 0), ("max_val_windows", 0), ("iters", 100))}}}


def learning_curve(a, argv, params: dict, work: Path, out_dir: Path):
    "Prepare, train each subset, fit its probability head, score everything on the test units, write the reports."
    params_path, _ = prepare(work, params, work / "prepare.log")
    params = yaml.safe_load(params_path.read_text())
    seed = int(params.get("seed", 0))
    index = json.loads((work / "cache" / "index.json").read_text())
    train_blocks, test_blocks = blocks_of(index, "train"), blocks_of(index, "test")
    subsets = nested_subsets(train_blocks, a.fractions, seed)
    runs = {f: train_subset(work, params, a.name, f"{f:g}", starts, seed) for f, starts in subsets.items()}
    cache = load_cache(work / "cache")
    scored = score_units(work, a.name, a.tile, params, cache, test_blocks, runs)
    counts, unit_block = scored[0], scored[2]
    leads = [round((k + 1) * params["prepare"]["time_step_s"] / 60, 3) if params["prepare"].get("time_step_s")
             else k + 1 for k in range(cache.n_out)]
    i35, total = THRESHOLDS.index(35), counts["prior"].sum(0)
    prior = {"csi": {str(t): csi(total[i]).tolist() for i, t in enumerate(THRESHOLDS)},
             "bias35": bias(total[i35]).tolist(), "mean_csi35": float(np.nanmean(csi(total[i35])))}
    rows = []
    for f, run in runs.items():
        rows.append(subset_row(f, run, subsets, train_blocks, scored, prior, a.boot, seed))
        r = rows[-1]
        print(f"subset {f:g}: {len(subsets[f])} windows, mean CSI@35 {r['mean_csi35']['model']:.3f} "
              f"(prior {prior['mean_csi35']:.3f}), gain {r['gain']['gain']:+.3f} ± {r['gain']['se']:.3f}; "
              f"BSS@35 gain of the trained probabilities {r['bss_gain']['gain']:+.3f} ± {r['bss_gain']['se']:.3f}", flush=True)
    baselines = baseline_csi(work, params["evaluate"]["methods"])
    meta = meta_of(a, argv, params, index, cache, test_blocks, rows, counts, unit_block, leads)
    out_dir.mkdir(parents=True, exist_ok=True)
    figure(out_dir / f"{a.name}.png", rows, baselines, prior)
    text = render(meta, rows, prior, baselines, leads)
    write_reports(out_dir, {f"{a.name}.md": text, f"{a.name}.json": json.dumps(
        {"meta": meta, "rows": rows, "prior": prior, "baselines": baselines}, indent=1)})   # unit sums: the .npz in --work
    print(text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=str(ROOT / "params-real.yaml"))
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.125, 0.25, 0.5, 1.0])
    ap.add_argument("--boot", type=int, default=2000, help="bootstrap resamples of the test units")
    ap.add_argument("--tile", type=int, default=64, help="bootstrap units: squares of this many model pixels (64: 128 km) of one time block")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override a param for every subset (repeatable)")
    ap.add_argument("--work", default=None, help="archive, cache, baselines, runs (default: .bench/learning_curve in the repo)")
    ap.add_argument("--out-dir", default=None, help="where the reports go (default reports/; with --smoke a temporary folder)")
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
        params.setdefault("probability", {})["iters"] = 20
        a.fractions, a.boot = [0.5, 1.0], 20
        tmp = tempfile.mkdtemp(prefix="nowcast-learning-curve-")
        work, out_dir = Path(tmp), Path(a.out_dir or Path(tmp) / "reports")
    else:
        work, out_dir = Path(a.work or ROOT / ".bench" / "learning_curve").resolve(), Path(a.out_dir or ROOT / "reports")
    work.mkdir(parents=True, exist_ok=True)
    try:
        learning_curve(a, argv, params, work, out_dir)
    finally:
        if tmp: shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
