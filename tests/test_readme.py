"""README.md is rendered from nbs/index.ipynb and must not drift from it."""
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_matches_index_notebook():
    "`make readme` would not change README.md."
    res = subprocess.run([sys.executable, "tools/render_readme.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_readme_names_the_two_commands():
    "A newcomer finds the set-up + main job and the set-up + tests commands."
    text = (ROOT / "README.md").read_text()
    assert "make repro" in text and "make test" in text


def _sh_commands() -> list[str]:
    "The commands of the README's `sh` blocks: continuation lines joined, comments dropped."
    text = (ROOT / "README.md").read_text()
    out = []
    for block in __import__("re").findall(r"```sh\n(.*?)```", text, flags=__import__("re").S):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"): out.append(line)
    return out


def test_every_readme_command_is_one_a_test_or_make_target_runs():
    "Each command a newcomer copies from the README is a make target, or is run (or parsed) by the tests."
    import re, shlex
    make_targets = set(re.findall(r"^(\w+):", (ROOT / "Makefile").read_text(), flags=re.M))
    tested_dvc = {"metrics show", "plots show", "exp show", "exp run", "metrics diff"}
    tests_text = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    dockerfile = (ROOT / "Dockerfile").read_text()
    commands = _sh_commands()
    assert len(commands) >= 10, commands
    for cmd in commands:
        words = shlex.split(cmd.replace("<", "").replace(">", ""))
        if words[0] == "make":
            assert words[1] in make_targets, cmd
        elif cmd == "source .venv/bin/activate":
            assert (ROOT / "Makefile").read_text().count("-m venv $(VENV)"), cmd   # make setup creates it
        elif cmd.startswith("cp params-full.yaml params.yaml && dvc exp run"):
            assert "cp params-full.yaml params.yaml && dvc exp run" in tests_text, cmd   # tests/test_full_scale.py
        elif cmd.startswith("cp params-real.yaml params.yaml && dvc exp run"):
            assert "cp params-real.yaml params.yaml && dvc exp run" in tests_text, cmd   # tests/test_real_radar.py
        elif words[0] in (".venv/bin/dvc", "dvc"):
            assert " ".join(words[1:3]) in tested_dvc, cmd
            assert f'"{words[1]}", "{words[2]}"' in tests_text or "dvc exp run" in tests_text, cmd
        elif words[0] == ".venv/bin/nowcast":
            help_text = subprocess.run([sys.executable, "-m", "nowcast.cli", words[1], "--help"], capture_output=True,
                                       text=True, cwd=ROOT).stdout
            for opt in (w.split("=")[0] for w in words[2:] if w.startswith("--")):
                assert opt in help_text, f"{cmd}: `nowcast {words[1]}` has no option {opt}"
        elif words[0] == ".venv/bin/python":
            assert (ROOT / words[1]).is_file(), cmd
        elif words[0] == "docker":
            if words[1] == "run":
                for vol in re.findall(r":(/workspace/\w+)", cmd):
                    assert vol in dockerfile, f"{cmd}: {vol} is not a VOLUME of the Dockerfile"
            assert words[1] in ("build", "run", "stop", "start"), cmd   # start: tests/test_preemption.py runs it again
        else:
            raise AssertionError(f"README command not covered by a test or make target: {cmd}")
