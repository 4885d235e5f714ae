"""What every benchmark shares: `--smoke` (its smallest scale, seconds, for `make test`) and `--out-dir`.

A smoke run goes through the benchmark's own code at tiny sizes and writes nothing under reports/: its figures
go to `--out-dir`, else to a temporary folder removed at exit. (Not a benchmark: the tests run `bench_*.py`.)"""
import argparse, atexit, shutil, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def add_output_args(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    "Add `--smoke` and `--out-dir` to a benchmark's parser."
    ap.add_argument("--smoke", action="store_true",
                    help="smallest scale, seconds (make test runs it): no figure worth keeping, nothing written to reports/")
    ap.add_argument("--out-dir", type=Path, default=None,
                    help="where the figures go (default reports/; with --smoke a temporary folder)")
    return ap


def output_dir(args: argparse.Namespace) -> Path:
    "The folder the figures go to (created): `--out-dir`, else reports/, else for a smoke run a temporary one."
    if args.out_dir is None and args.smoke:
        tmp = Path(tempfile.mkdtemp(prefix="bench_smoke."))
        atexit.register(shutil.rmtree, tmp, True)
        return tmp
    out = args.out_dir or ROOT / "reports"
    out.mkdir(parents=True, exist_ok=True)
    return out


def shown_command(script: str, argv: list | None = None) -> str:
    "The command as a user would type it: where the files went (--work, --out-dir) is not part of what was measured."
    shown, skip = [], False
    for arg in (sys.argv[1:] if argv is None else argv):
        if skip: skip = False; continue
        if arg in ("--work", "--out-dir"): skip = True; continue
        if arg.startswith(("--work=", "--out-dir=")): continue
        shown.append(arg if not arg.startswith("/") else Path(arg).name)
    return " ".join([f"python benchmarks/{script}", *shown])


def write_reports(out_dir: Path, files: dict):
    "Write each `{name: text}` into `out_dir` atomically (a temporary file renamed into place)."
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        tmp = out_dir / f".{name}.tmp"
        tmp.write_text(body); tmp.replace(out_dir / name)
