"""Every parameter a stage reads is listed in that stage's `params` in dvc.yaml, so that changing it reruns
the stage (and changing anything else does not). Each `nowcast` stage command of dvc.yaml runs here, in a
tiny copy of the project, with params.yaml loaded into a mapping that records every key read; the
papermill stages' notebooks are checked for the keys their code reads."""
import copy, json, re, shlex
from pathlib import Path

import pytest
import yaml

from _pipeline import ROOT, TINY, merge

class Recording(dict):
    "A params mapping that notes every key path read (`train.batch_size`), sections included."
    def __init__(self, d, log, prefix=""):
        super().__init__((k, Recording(v, log, f"{prefix}{k}.") if isinstance(v, dict) else v) for k, v in d.items())
        self.log, self.prefix = log, prefix
    def __getitem__(self, k):
        self.log.add(self.prefix + str(k)); return super().__getitem__(k)
    def get(self, k, default=None):
        self.log.add(self.prefix + str(k)); return super().get(k, default)
    def __deepcopy__(self, memo):
        return Recording({k: copy.deepcopy(v, memo) for k, v in dict.items(self)}, self.log, self.prefix)
    def plain(self) -> dict:
        return {k: v.plain() if isinstance(v, Recording) else v for k, v in dict.items(self)}


def _uncovered(read: set, listed: list, params: dict) -> list:
    "Keys read that no listed param covers (a listed section covers its keys; a section read whole needs listing)."
    def covered(k): return any(k == p or k.startswith(p + ".") for p in listed)
    def value(k):
        v = params
        for part in k.split("."): v = v.get(part) if isinstance(v, dict) else None
        return v
    out = []
    for k in sorted(read):
        if value(k) is None and not covered(k): continue     # a key the file lacks: a default, nothing to track
        if isinstance(value(k), dict) and any(r.startswith(k + ".") for r in read): continue   # its keys are checked
        if not covered(k): out.append(k)
    return out


def _stages():
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _listed(stage: dict) -> list:
    out = []
    for p in stage.get("params", []):
        out += list(p) if isinstance(p, dict) else [p]
    return out


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory):
    d = tmp_path_factory.mktemp("stage_params")
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return d, params


def test_nowcast_stages_read_only_listed_params(tiny_project, monkeypatch):
    "Run every `nowcast ...` stage command in order; each reads only the params its stage lists."
    from nowcast import cli
    project, params = tiny_project
    monkeypatch.chdir(project)
    real_load, log = yaml.safe_load, set()
    def recording_load(text):
        data = real_load(text)
        is_params = isinstance(data, dict) and "prepare" in data and "train" in data
        return Recording(data, log) if is_params else data
    monkeypatch.setattr(yaml, "safe_load", recording_load)
    from nowcast import engine   # checkpoints keep the params as plain dicts (weights_only loading)
    real_save = engine.save_checkpoint
    monkeypatch.setattr(engine, "save_checkpoint", lambda ck, path: real_save(
        {**ck, "params": ck["params"].plain() if isinstance(ck["params"], Recording) else ck["params"]}, path))
    problems = {}
    for name, stage in _stages().items():
        cmd = stage["cmd"]
        if not cmd.startswith("nowcast "): continue
        cmd = cmd.replace("${predict.out_dir}", str(params["predict"]["out_dir"]))
        log.clear()
        assert cli.main(shlex.split(cmd)[1:]) == 0, f"{name}: `{cmd}` failed"
        bad = _uncovered(log, _listed(stage), params)
        if bad: problems[name] = bad
    assert not problems, f"params read but not listed in dvc.yaml: {problems}"


NOTEBOOK_READS = re.compile(r'(train_p|eval_p|prep_p|ev)\.get\("(\w+)"|params(?:\.get\("(\w+)"[^)]*\)|\["(\w+)"\])'
                            r'(?:\.get\("(\w+)"|\["(\w+)"\])?')
SECTION = {"train_p": "train", "eval_p": "evaluate", "prep_p": "prepare", "ev": "evaluate"}


def _notebook_reads(path: Path) -> set:
    "Param keys the notebook's code reads: params['x']['y'], params.get('x', {}).get('y'), train_p.get('y') and the like."
    code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    keys = set()
    for m in NOTEBOOK_READS.finditer(code):
        var, key, top1, top2, sub1, sub2 = m.groups()
        if var: keys.add(f"{SECTION[var]}.{key}")
        else:
            top, sub = top1 or top2, sub1 or sub2
            keys.add(f"{top}.{sub}" if sub else top)
    return keys


@pytest.mark.parametrize("stage", ["report_phase1", "report_phase2", "report_phase3", "evaluate"])
def test_papermill_stages_list_what_their_notebook_reads(stage, tiny_project):
    st = _stages()[stage]
    nb = ROOT / re.search(r"papermill (\S+\.ipynb)", st["cmd"]).group(1)
    reads = _notebook_reads(nb)
    assert reads, f"{nb.name}: found no params reads (the check itself is broken)"
    phase = re.search(r"-p phase (\w+)", st["cmd"])
    reads = {r.replace("{phase}", phase.group(1)) for r in reads} if phase else reads
    if phase: reads = {r for r in reads if not r.startswith("phase") or r.startswith(phase.group(1))}
    _, params = tiny_project
    assert not _uncovered(reads, _listed(st), params), (stage, sorted(reads))


def test_evaluate_function_reads_only_listed_params(tiny_cache, tiny_params, tmp_path):
    "The evaluate stage's work (`nowcast.evaluate.evaluate`, run by its notebook) reads only its listed params."
    import torch
    from nowcast.evaluate import evaluate
    from nowcast.models import get_model
    from nowcast.data import load_cache
    cache = load_cache(tiny_cache)
    kwargs = dict(n_levels=int(cache.shape[1]), n_in=cache.n_in, n_out=cache.n_out, hidden=[4, 4], groups=1)
    torch.save({"model": get_model("AdvectionNet", **kwargs).state_dict(),
                "model_config": {"name": "AdvectionNet", "kwargs": kwargs}}, tmp_path / "m.pt")
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), {"prepare": {"cache_dir": str(tiny_cache)},
                                                                         "evaluate": {"max_windows": 2, "fss_scales": [1]}})
    log = set()
    evaluate(Recording(params, log), tmp_path / "m.pt", reports_dir=tmp_path / "r")
    assert not _uncovered(log, _listed(_stages()["evaluate"]), params), sorted(log)
