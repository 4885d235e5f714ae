"""Pre-emption through the users' own entry points, mid-epoch, where nothing outlives the entry point.

In a container every process dies with PID 1: the kernel kills the rest of the PID namespace. So the image's
ENTRYPOINT + CMD (read from the Dockerfile) run here as PID 1 of a PID namespace of their own
(`unshare --pid --fork --kill-child`), and SIGTERM goes to that PID 1 as `docker stop` sends it: when PID 1 has
exited, `checkpoints/phase1_last.pt` must hold the interrupted epoch, and the next run (the same container
started again) must resume from it. An init that passes SIGTERM on to `dvc repro` (tini -g) fails here: dvc
exits at once, PID 1 follows, and the training process is killed before it has saved.

`make repro` runs under the same rule: SIGTERM to its process group (make passes it on once more) must leave the
checkpoint before make exits; PID 1 of its namespace is a shell waiting for make, as a container's would be."""
import json, os, re, shlex, shutil, signal, subprocess, sys
from pathlib import Path

import pytest

from _pipeline import ROOT, SLOW, copy_project, env, run, wait_for

MID_EPOCH_0 = r"phase1: epoch 0, batch [3-9]/"     # the progress line of a batch in the middle of the first epoch
CKPT = "checkpoints/phase1_last.pt"


def _exec_form(instruction: str) -> list[str]:
    "The Dockerfile's ENTRYPOINT or CMD as the list Docker runs (exec form, JSON)."
    lines = [l for l in (ROOT / "Dockerfile").read_text().splitlines() if l.startswith(instruction + " ")]
    assert len(lines) == 1, f"the Dockerfile needs exactly one {instruction}: {lines}"
    return json.loads(lines[0].split(" ", 1)[1])


def _here(argv: list[str]) -> list[str]:
    "`argv` with its program mapped to this machine's when the image's absolute path does not exist here."
    prog = argv[0]
    if prog.startswith("/") and not Path(prog).exists():
        prog = shutil.which(Path(prog).name, path=env()["PATH"])
        assert prog, f"{argv[0]} (the image's PID 1) is not installed here: pip install the dev extras"
    return [prog, *argv[1:]]


def _container_env() -> dict:
    "The venv on PATH, and no SHELL, as in the image (dvc then runs each stage with /bin/sh)."
    e = env(); e.pop("SHELL", None)
    return e


def _in_pid_namespace(argv: list[str], cwd: Path) -> subprocess.Popen:
    "Start `argv` as PID 1 of a new PID namespace (its own session), output on a pipe."
    user = [] if os.geteuid() == 0 else ["--map-root-user"]     # CI runs as root; elsewhere a user namespace
    return subprocess.Popen(["unshare", *user, "--pid", "--fork", "--kill-child", "--mount-proc", *argv], cwd=cwd,
                            env=_container_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _pid1(unshare: subprocess.Popen) -> int:
    "The host's pid of the namespace's PID 1 (unshare's only child)."
    return int(Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children").read_text().split()[0])


def _finish(proc: subprocess.Popen, timeout=180) -> str:
    "Wait for the namespace to end (its PID 1 exited: nothing in it is left); SIGKILL all of it on a timeout."
    try:
        return proc.communicate(timeout=timeout)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL); proc.wait()   # --kill-child: unshare's death kills PID 1, then all


def _stopped_mid_epoch_0(proj: Path, out: str):
    "The checkpoint PID 1 left behind: written by the signal in the middle of epoch 0."
    from nowcast.inference import load_checkpoint
    assert (proj / CKPT).exists(), f"PID 1 exited before the training stage saved {CKPT}:\n{out[-4000:]}"
    ck = load_checkpoint(proj / CKPT)
    assert ck["finished"] is False and ck["epoch"] == 0 and ck["progress"]["batch"] > 0, (ck["epoch"], ck["progress"])
    return ck


@pytest.fixture(scope="module")
def _prepared_once(tmp_path_factory):
    proj = copy_project(tmp_path_factory.mktemp("preemption") / "proj", SLOW)
    run(["dvc", "repro", "prepare"], proj)
    return proj


@pytest.fixture
def prepared(_prepared_once, tmp_path):
    "A copy of the project on SLOW params with its cache prepared (the stages before training), for one test."
    return Path(shutil.copytree(_prepared_once, tmp_path / "proj", symlinks=True))


def test_docker_stop_saves_the_epoch_and_the_next_run_resumes(prepared):
    "SIGTERM to the image's PID 1 mid-epoch leaves phase1_last.pt; the image's next run goes on from the next batch."
    image = _here(_exec_form("ENTRYPOINT")) + _exec_form("CMD")
    proc = _in_pid_namespace(image, prepared)
    try:
        wait_for(proc, MID_EPOCH_0)
        assert not (prepared / CKPT).exists()            # nothing saved yet: what is there next comes from the signal
        os.kill(_pid1(proc), signal.SIGTERM)             # docker stop
    finally:
        out = _finish(proc)
    ck = _stopped_mid_epoch_0(prepared, out)
    # the next `docker start`: the same entry point and command on the same files, stopped again a few batches on
    proc = _in_pid_namespace(image, prepared)
    try:
        lines = wait_for(proc, r"resuming from \S*phase1_last\.pt")
        lines += wait_for(proc, r"phase1: epoch \d+, batch \d+/")
        lines += wait_for(proc, MID_EPOCH_0.replace("[3-9]", str(ck["progress"]["batch"] + 2)))
        os.kill(_pid1(proc), signal.SIGTERM)
    finally:
        out = "".join(lines) + _finish(proc)
    first = re.search(r"phase1: epoch (\d+), batch (\d+)/", "".join(lines)).groups()
    assert first == ("0", str(ck["progress"]["batch"] + 1)), (first, ck["progress"])   # on from the batch after the saved one
    from nowcast.inference import load_checkpoint
    again = load_checkpoint(prepared / CKPT)
    assert again["step"] > ck["step"] and again["finished"] is False, out[-3000:]


def test_sigterm_to_make_repro_saves_before_make_exits(prepared):
    "SIGTERM to the process group of `make repro` mid-epoch: the checkpoint is on disk when make exits."
    shutil.copy2(ROOT / "Makefile", prepared / "Makefile")
    venv = Path(sys.executable).parent.parent         # the test's venv stands for .venv; -o: never reinstall it
    make = f"make -o {venv}/bin/nowcast VENV={venv} repro; exit $?"
    proc = _in_pid_namespace(["bash", "-c", make], prepared)
    try:
        wait_for(proc, MID_EPOCH_0)
        assert not (prepared / CKPT).exists()
        os.killpg(proc.pid, signal.SIGTERM)   # make, the recipe's processes and bash (PID 1 ignores it; unshare blocks it)
    finally:
        out = _finish(proc)
    _stopped_mid_epoch_0(prepared, out)
    assert "SIGINT received; saved checkpoints/phase1_last.pt" in out, out[-3000:]   # one stop request, not an abort


def _readme_docker_run() -> list[str]:
    "The command the README's `docker run` gives the image (what follows the image's name), as Docker gets it."
    text = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S) if "docker run" in b).replace("\\\n", " ")
    words = shlex.split(next(l for l in block.splitlines() if l.startswith("docker run")))
    image = re.search(r"docker build -t (\S+)", block).group(1)
    return words[words.index(image) + 1:]


def test_docker_stop_on_the_readmes_run_command(prepared):
    "The README's `docker run ... sh -c 'dvc repro && cp ...'` under the image's ENTRYPOINT: the same as the CMD."
    command = _readme_docker_run()
    assert command[:2] == ["sh", "-c"] and "dvc repro" in command[2], command
    proc = _in_pid_namespace(_here(_exec_form("ENTRYPOINT")) + command, prepared)
    try:
        wait_for(proc, MID_EPOCH_0)
        assert not (prepared / CKPT).exists()
        os.kill(_pid1(proc), signal.SIGTERM)
    finally:
        out = _finish(proc)
    _stopped_mid_epoch_0(prepared, out)
