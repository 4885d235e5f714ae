"""What each model time step gets out of the real archive: windows and storm cores per radar, at 5 and 10 minutes.

    .venv/bin/python benchmarks/bench_cadence.py [--params params-real.yaml] [--steps 300 600] [--work DIR] [--smoke]

The real records come at 5 minutes (KNMI, RMI, DPC), 6 (BoM Melbourne) and 10 (BoM Brisbane). `prepare` takes
a radar whose cadence divides the model's time step (`prepare.time_step_s`; a faster one every k-th scan)
and skips the others. This builds the archive of `--params` once and prepares it at each time step
(`max_gap_s` 1.5 steps), then counts per radar and split: the windows, the hours of forecast they
span, and the observed pixels at or above 35 and 40 dBZ in the scans the model must forecast (the training
targets: what a model learns cores from). Writes `reports/cadence.md` and `.json`.

`--smoke` does it on a tiny synthetic archive in a temporary folder and writes nothing under reports/.
"""
import argparse, copy, json, shutil, sys, tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _smoke import shown_command, write_reports  # noqa: E402
from bench_robustness import nowcast, synthetic_smoke_params  # noqa: E402
from nowcast.data import load_cache  # noqa: E402
from nowcast.evaluate import read_window  # noqa: E402

CORES = (35, 40)


def prepared(work: Path, params: dict, step: int) -> Path:
    "The archive (once) and its cache at time step `step` (s)."
    p = copy.deepcopy(params)
    p["prepare"].update(time_step_s=step, max_gap_s=int(1.5 * step), cache_dir=str(work / f"cache{step}"))
    src = p.get("radar_import", {}).get("source_dir")
    if src and not Path(src).is_absolute(): p["radar_import"]["source_dir"] = str((ROOT / src).resolve())
    path = work / f"params{step}.yaml"
    path.write_text(yaml.safe_dump(p, sort_keys=False))
    if not (work / "archive.done").is_file():
        nowcast(["archive", "--params", path], work, {}, work / "prepare.log")
        (work / "archive.done").write_text("")
    if not (work / f"cache{step}" / "index.json").is_file():
        nowcast(["prepare", "--params", path], work, {}, work / "prepare.log")
    return work / f"cache{step}"


def counts(cache_dir: Path) -> dict:
    "{radar: {split: {windows, hours, px35, px40}}}: observed core pixels summed over the windows' forecast scans."
    cache = load_cache(cache_dir)
    out = {}
    for split, starts in cache.windows.items():
        for s in starts:
            w = read_window(cache, int(s))
            r = cache.radar_names[int(cache.scan_radar[int(s)])]
            d = out.setdefault(r, {}).setdefault(split, {"windows": 0, **{f"px{t}": 0 for t in CORES}})
            d["windows"] += 1
            seen = ~w.obs_missing
            for t in CORES: d[f"px{t}"] += int(((w.obs >= t) & seen).sum())
    for r in cache.radar_names: out.setdefault(r, {})
    return out


def render(meta: dict, table: dict) -> str:
    md = ["# Model time step: what each one gets out of the real archive", "",
          f"Command: `{meta['command']}`. Each time step prepares the same imported archive (`{meta['params']}`, "
          "`max_gap_s` 1.5 steps); a radar whose cadence does not divide the step is skipped, a faster one is "
          "taken every k-th scan. Observed core pixels: summed over the scans each window must forecast "
          "(1 km pixels pooled to the model's), what a model learns cores from.", ""]
    for step, radars in table.items():
        s = int(step)
        md += [f"## Time step {s // 60} min: {meta['n_out']} leads, t+{s // 60} to t+{meta['n_out'] * s // 60} min", "",
               "| radar | split | windows | pixels >= 35 dBZ | pixels >= 40 dBZ |", "|---|---|---|---|---|"]
        tot = {}
        for r, splits in radars.items():
            if not splits: md.append(f"| {r} | (skipped) | 0 | 0 | 0 |"); continue
            for sp in ("train", "val", "test"):
                d = splits.get(sp)
                if not d: continue
                md.append(f"| {r} | {sp} | {d['windows']} | {d['px35']} | {d['px40']} |")
                t = tot.setdefault(sp, {"windows": 0, "px35": 0, "px40": 0})
                for k in t: t[k] += d[k]
        for sp, t in tot.items():
            md.append(f"| all | {sp} | {t['windows']} | {t['px35']} | {t['px40']} |")
        md.append("")
    return "\n".join(md) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=str(ROOT / "params-real.yaml"))
    ap.add_argument("--steps", type=int, nargs="+", default=[300, 600])
    ap.add_argument("--work", default=None, help="archive and caches (default: .bench/cadence in the repo)")
    ap.add_argument("--out-dir", default=str(ROOT / "reports"))
    ap.add_argument("--smoke", action="store_true", help="tiny synthetic archive in a temporary folder")
    a = ap.parse_args(argv)
    params = yaml.safe_load(Path(a.params).read_text())
    tmp = None
    if a.smoke:
        params = synthetic_smoke_params(params)
        params["synthetic"]["scans_per_event"] = 24
        tmp = tempfile.mkdtemp(prefix="nowcast-cadence-")
        work, out_dir = Path(tmp), Path(tmp) / "reports"
    else:
        work, out_dir = Path(a.work or ROOT / ".bench" / "cadence").resolve(), Path(a.out_dir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        table = {str(s): counts(prepared(work, params, s)) for s in a.steps}
        meta = {"command": shown_command("bench_cadence.py", argv), "params": Path(a.params).name,
                "n_out": int(params["prepare"]["n_out"])}
        text = render(meta, table)
        write_reports(out_dir, {"cadence.md": text, "cadence.json": json.dumps({"meta": meta, "table": table}, indent=1)})
        print(text)
    finally:
        if tmp: shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
