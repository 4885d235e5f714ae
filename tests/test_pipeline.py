"""The DVC pipeline end to end on tiny params, through `dvc repro` itself: every stage runs, a second repro
does nothing, a phase-3 change reruns phase 3 onwards only, a report edit (viz.py) never retrains, and
`train.nproc_per_node: 2` trains through the same stage with two processes. Pre-emption (SIGTERM mid-epoch)
goes through the users' entry points, the image's and `make repro`: tests/test_preemption.py."""
import json
import re
from pathlib import Path

import pytest, yaml

import subprocess
from _pipeline import TINY, copy_project, env, merge, run as _run, ran as _ran

TRAINING = ["train_phase1", "train_phase2", "train_phase3"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    "A copy of the project with tiny params (the archive is built by the pipeline's own synth stage)."
    return copy_project(tmp_path_factory.mktemp("pipeline") / "proj", TINY)


def _report_problems(notebook: Path, html: Path, root: Path) -> list:
    "What a meteorologist should not see in a rendered report: code, warnings, tracebacks, paths of this machine."
    problems = []
    if "hl-ipython3" in html.read_text(): problems.append("code cells are shown")   # nbconvert's highlighted code
    for cell in json.loads(notebook.read_text())["cells"]:
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", "")) + \
                   "".join(out.get("data", {}).get("text/markdown", ""))
            if out.get("output_type") == "stream" and out.get("name") == "stderr": problems.append(f"stderr: {text[:200]}")
            if out.get("output_type") == "error": problems.append(f"error: {out.get('ename')}")
            for bad in ("Warning", "site-packages", str(root), str(Path.home()), "/tmp/"):
                if bad in text: problems.append(f"{bad!r} in {text[:200]!r}")
    return problems


def test_repro_runs_every_stage(project):
    "A first `dvc repro` runs all stages and leaves the rendered reports, checkpoints and metrics."
    out = _run(["dvc", "repro"], project)
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert sorted(_ran(out)) == sorted(stages), out[-3000:]
    for phase in ("phase1", "phase2", "phase3"):
        html = (project / f"reports/{phase}_report.html").read_text()
        assert len(html) > 10_000 and "Traceback" not in html
        assert (project / f"checkpoints/{phase}_best.pt").exists()
        train = json.loads((project / f"reports/{phase}_train.json").read_text())
        assert {"val_huber", "val_ssim_term", "val_high_share", "val_csi35", "data_wait_frac"} <= set(train["final"])
    metrics = json.loads(_run(["dvc", "metrics", "show", "--json"], project))
    assert metrics, "dvc metrics show found no metrics"
    _run(["dvc", "plots", "show", "-o", "plots_html"], project)
    assert (project / "plots_html/index.html").exists()
    summary = (project / "reports/summary.md").read_text()
    assert "CSI at 35 dBZ" in summary and re.search(r"Observed at or above 40 dBZ: .* pixels per lead, in .* windows", summary)
    for name in ("phase1_report", "phase2_report", "phase3_report", "evaluate_report"):
        problems = _report_problems(project / f"reports/{name}.ipynb", project / f"reports/{name}.html", project)
        assert not problems, (name, problems)


def test_second_repro_does_nothing(project):
    "Nothing changed, nothing runs."
    out = _run(["dvc", "repro"], project)
    assert _ran(out) == [], out[-3000:]


def test_report_edit_never_retrains(project):
    "Editing the plotting code (viz.py) or a report notebook leaves every training stage up to date."
    viz = project / "nowcast/viz.py"
    original = viz.read_text()
    try:
        viz.write_text(original + "\n# a colour change\n")
        status = _run(["dvc", "status", "--json"], project)
        changed = set(json.loads(status))
        assert changed and not changed & set(TRAINING + ["archive", "prepare"]), changed
        assert {"report_phase1", "report_phase2", "report_phase3", "evaluate"} <= changed, changed
    finally:
        viz.write_text(original)
    assert json.loads(_run(["dvc", "status", "--json"], project)) == {}


def test_phase3_change_reruns_phase3_onwards(project):
    "A phase-3 parameter change reruns phase 3 and what follows, never phases 1-2 or their reports."
    _run(["git", "add", "-A"], project)
    _run(["git", "commit", "-qm", "first run"], project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["phase3"]["lr"] = 2e-5
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = _run(["dvc", "repro"], project)
    ran = _ran(out)
    assert ran and ran[0] == "train_phase3", ran
    assert not {"archive", "prepare", "train_phase1", "train_phase2", "report_phase1", "report_phase2"} & set(ran), ran
    diff = json.loads(_run(["dvc", "metrics", "diff", "--json"], project))   # the new run against the committed one
    assert "final.val_loss" in diff.get("reports/phase3_train.json", {}), diff
    _run(["git", "add", "-A"], project)
    _run(["git", "commit", "-qm", "phase3 lr"], project)
    assert "phase3.lr" in _run(["dvc", "exp", "show", "--md"], project)


# --- several processes, through `dvc repro` (pre-emption: tests/test_preemption.py) -----------------------


def test_two_processes_through_the_stage(tmp_path):
    "`train.nproc_per_node: 2` runs the phase under torchrun (gloo on CPU) from the same `dvc repro` stage."
    proj = copy_project(tmp_path / "proj", merge(json.loads(json.dumps(TINY)), {"train": {"nproc_per_node": 2}}))
    out = _run(["dvc", "repro", "train_phase1"], proj)
    assert "2 processes" in out, out[-3000:]
    summary = json.loads((proj / "reports/phase1_train.json").read_text())
    assert summary["world_size"] == 2
    from nowcast.inference import load_checkpoint
    ck = load_checkpoint(proj / "checkpoints/phase1_last.pt")
    assert ck["world_size"] == 2 and len(ck["rng"]) == 2 and ck["finished"] is True


def _users_archive(proj: Path, place: str, tmp_path: Path) -> dict:
    "A user's own archive (their own event names) at `place` in the project; returns {path: bytes} of every file."
    from nowcast.synthetic import make_archive
    syn = yaml.safe_load((proj / "params.yaml").read_text())["synthetic"]
    made = make_archive(tmp_path / "radar", **{**{k: v for k, v in syn.items() if k != "out_dir"}, "seed": 99})
    for k, event in enumerate(sorted({p.parent.parent for p in made})):       # the user's own names
        event.rename(tmp_path / "radar" / f"storm_{k}")
    (proj / place).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "radar").rename(proj / place)
    (proj / place / "README.txt").write_text("my radar, my notes\n")        # not a scan: kept all the same
    return {p: p.read_bytes() for p in (proj / place).rglob("*") if p.is_file()}


def test_repro_on_a_users_archive(tmp_path):
    """`dvc repro` (what `make repro` runs) with data.raw_dir pointing at a user's own folder: the archive stage builds
    nothing and leaves the folder alone, and every other stage runs on the user's scans."""
    proj = copy_project(tmp_path / "proj", merge(json.loads(json.dumps(TINY)), {"data": {"raw_dir": "datasets/mine"}}))
    before = _users_archive(proj, "datasets/mine", tmp_path)
    out = _run(["dvc", "repro"], proj)
    assert {"archive", "prepare", "train_phase3", "evaluate", "predict", "report"} <= set(_ran(out)), out[-3000:]
    assert "nothing to build" in out
    assert [p.name for p in (proj / "nowcast-data" / "synthetic").iterdir()] == ["NOT_BUILT.txt"]
    assert {p: p.read_bytes() for p in (proj / "datasets" / "mine").rglob("*") if p.is_file()} == before
    prep = json.loads((proj / "reports/prepare.json").read_text())
    assert prep["raw_dir"] == "datasets/mine" and prep["events"] == 3 and prep["scans"] == len(before) - 1
    assert json.loads((proj / "reports/predict.json").read_text())["n_files"] > 0


@pytest.mark.parametrize("place", ["data", "data/mine"])
def test_a_users_archive_in_data_survives_dvc_repro(tmp_path, place):
    """`data/` was the synthetic archive's folder (a DVC output, so `dvc repro` replaced it). A user's archive there, or
    in `data/mine`, is now never an output: after `dvc repro archive prepare` (the stages that touch archives) every file is
    still there, byte for byte, and a user's folder inside the pipeline's own is refused before anything runs."""
    proj = copy_project(tmp_path / "proj", merge(json.loads(json.dumps(TINY)), {"data": {"raw_dir": place}}))
    before = _users_archive(proj, place, tmp_path)
    out = _run(["dvc", "repro", "archive", "prepare"], proj)
    assert {"archive", "prepare"} <= set(_ran(out)), (_ran(out), out[:3000])
    assert {p: p.read_bytes() for p in (proj / place).rglob("*") if p.is_file()} == before
    assert json.loads((proj / "reports/prepare.json").read_text())["scans"] == len(before) - 1
    if place != "data/mine": return   # the refusal below once is enough
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["data"]["raw_dir"] = "nowcast-data/synthetic/mine"
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    res = subprocess.run(["dvc", "repro", "archive", "prepare"], cwd=proj, env=env(), capture_output=True, text=True, timeout=600)
    assert res.returncode != 0 and "lies inside nowcast-data/synthetic" in res.stdout + res.stderr
    assert {p: p.read_bytes() for p in (proj / place).rglob("*") if p.is_file()} == before
