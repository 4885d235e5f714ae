"""What a reader of `nowcast/` measures, kept true: each stage in dvc.yaml depends on exactly the modules it imports,
and no module or function grows past what a reader follows in one sitting (issue 35's split)."""
import ast, json, re
from pathlib import Path

import pytest
import yaml

from test_import_graph import import_graph, imported_names, modules_loaded

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "nowcast"
MAX_MODULE_LINES = 620   # "about 600": where a reader of a module starts to lose the thread
MAX_FUNCTION_LINES = 65  # about what a notebook can show in one cell and explain in a sentence
GRAPH = import_graph()   # {nowcast.x: the package's modules it imports}


def _modules() -> dict:
    return {p.stem: p for p in PKG.glob("*.py") if not p.name.startswith("_")}


def imports_of(tree: ast.AST, name: str = "nowcast.__notebook__") -> set:
    "The `nowcast` modules (short names) a piece of code imports, at any level (inside functions too): the import graph's own parser."
    loaded = modules_loaded(imported_names(tree, name, False), GRAPH)
    return {m.split(".", 1)[1] for m in loaded if "." in m}


def closure(modules) -> set:
    "Every module the given ones import, directly or not (themselves included)."
    todo, seen = [f"nowcast.{m}" for m in modules], set()
    while todo:
        m = todo.pop()
        if m in seen: continue
        seen.add(m)
        todo += GRAPH[m]
    return {m.split(".", 1)[1] for m in seen}


def _notebook_imports(path: Path) -> set:
    nb = json.loads(path.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    code = "\n".join(l for l in code.splitlines() if not l.lstrip().startswith(("%", "!")))
    return imports_of(ast.parse(code))


def _entry_modules(cmd: str) -> set:
    "The modules a stage's command starts in: the `nowcast` command's dispatcher (it pins the float path) and the subcommand's module, or the papermill notebook's imports."
    from nowcast.cli import COMMANDS
    out = set()
    for sub in re.findall(r"(?:^|&&\s*)nowcast (\w+)", cmd): out |= {"cli", COMMANDS[sub][0].split(".")[1]}
    for nb in re.findall(r"papermill (\S+\.ipynb)", cmd): out |= _notebook_imports(ROOT / nb)
    return out


STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_depends_on_the_modules_it_imports(stage):
    "A stage's `nowcast/*.py` deps are exactly the modules its command imports (so a change re-runs what it touches)."
    s = STAGES[stage]
    cmd = s["cmd"] if isinstance(s["cmd"], str) else " && ".join(s["cmd"])
    want = {f"nowcast/{m}.py" for m in closure(_entry_modules(cmd))}
    have = {d for d in s.get("deps", []) if str(d).startswith("nowcast/")}
    assert have == want, f"{stage}: missing {sorted(want - have)}, not imported {sorted(have - want)}"


def test_imports_of_sees_every_form():
    "The import finder itself: relative, absolute, package-level and inside functions."
    code = "from .scan import Scan\nfrom nowcast.write import atomic_write\nfrom nowcast import codes\n" \
           "def f():\n    import nowcast.events\n    from . import readers\n"
    assert imports_of(ast.parse(code)) == {"scan", "write", "codes", "events", "readers"}


def test_no_module_or_function_too_long():
    "No module over about 600 lines and no function over about 60: each reads as one chapter, each function in one breath."
    long_modules = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    long_functions = {}
    for m, p in _modules().items():
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES:
                long_functions[f"{m}.{n.name}"] = n.end_lineno - n.lineno + 1
    assert not long_modules and not long_functions, (long_modules, long_functions)


# Every name these modules exported before they were split (their `__all__` at a11d5d1): users' code and the
# benchmarks import them from there, so they stay importable from there.
EXPORTED_BEFORE = {
    'data': ['SKIP_KINDS', 'Skips', 'find_scans', 'scan_time', 'Event', 'group_events', 'split_counts', 'split_events',
        'empty_split_warnings', 'source_cadence_s', 'step_scans', 'window_starts', 'pool_scan', 'check_quantisation',
        'quantize', 'dequantize', 'normalize', 'denormalize', 'code_table', 'decode_codes', 'grid_to_dict',
        'grid_from_dict', 'pool_grid', 'GridGroup', 'grid_groups', 'pick_grid', 'describe_grid', 'grid_words',
        'grid_summary', 'source_credit', 'keep_model_grids', 'prepare', 'Cache', 'load_cache', 'collate_windows',
        'crop_weights', 'pick_crop', 'RadarWindows', 'make_loader', 'prepare_from_params', 'format_summary', 'cli_main'],
    'io': ['NO_ECHO_DBZ', 'FILL_SHORT', 'DBZ_SCALE', 'TIME_UNITS', 'DBZ_RANGE', 'MAX_EXTENT_KM', 'LEVEL_RANGE_KM',
        'EARLIEST_SCAN', 'READ_TIMEOUT_S', 'READ_WORKERS', 'SCAN_ERROR_KINDS', 'ScanError', 'atomic_write', 'Scan',
        'scan_time_from_name', 'read_scan', 'read_scan_time', 'read_scan_layout', 'read_scan_grid', 'write_grid_netcdf',
        'read_credit', 'ReaderPool', 'read_many', 'read_scans', 'read_scan_times', 'read_options', 'is_day_folder',
        'is_scan_file', 'day_scans', 'first_before', 'latest', 'Grid', 'azimuthal_equidistant'],
    'watch': ['LDATA', 'STATE', 'LOCK', 'STATUS', 'PARTIAL', 'ldata_texts', 'parse_ldata_xml', 'parse_ldata_ascii',
        'read_latest_data_info', 'ldata_data_path', 'write_latest_data_info', 'scan_files', 'file_sig', 'Arrival',
        'ScanFeed', 'ahead_of_clock', 'load_state', 'save_state', 'lock_folder', 'name_fault', 'write_group',
        'clean_partials', 'start_observer', 'Watcher', 'read_status', 'health', 'status_text', 'show_status', 'cli_main'],
    'train': ['PhaseSchedule', 'rng_state', 'set_rng_state', 'save_checkpoint', 'remove_interrupted_writes', 'EpochSampler',
        'phase_loader', 'epoch_loader', 'rotation_of', 'rotate_batch', 'forward_loss', 'backward',
        'apply_channels_last', 'TrainingInterrupted', 'phase_epochs', 'validate', 'evaluate_loss', 'EpochLog',
        'checkpoint_due', 'WeightAverage', 'fit', 'apply_overrides', 'model_from_params', 'train_phase',
        'torchrun_command', 'cli_main'],
    'viz': ['DBZ_LEVELS', 'DBZ_COLORS', 'MISSING_COLOR', 'dbz_cmap', 'radar_projection', 'offline_cartopy',
        'natural_earth_file', 'map_axes', 'ring_spacing_km', 'draw_range_rings', 'draw_coastlines', 'decorate_map',
        'credit_line', 'add_credit', 'column_max', 'plot_column_max', 'max_row', 'plot_cross_section', 'dbz_colorbar',
        'plot_ellipses', 'available_leads', 'plot_sequence', 'read_dvclive_history', 'plot_curves', 'plot_training',
        'plot_motion', 'plot_csi_by_lead', 'save_figure'],
    'radar_import': ['SOURCES', 'IMPORTERS', 'IMPORT_DEFAULTS', 'pysteps_io', 'pysteps_data_sources', 'RadarSource', 'source_spec',
        'scan_time_of', 'find_source_files', 'import_hdf5_grid', 'get_importer', 'regrid_latlon', 'Conversion',
        'averaging_factor', 'rain_to_dbz', 'target_path', 'import_scan', 'is_imported', 'import_source', 'import_radar',
        'import_from_params', 'format_summary', 'cli_main'],
}


@pytest.mark.parametrize("module", sorted(EXPORTED_BEFORE))
def test_names_stay_importable_where_they_were(module):
    "Each name is still importable from the module it came from, and is the very object its new home defines."
    import importlib
    mod = importlib.import_module(f"nowcast.{module}")
    missing = [n for n in EXPORTED_BEFORE[module] if not hasattr(mod, n)]
    assert not missing, f"nowcast.{module} no longer offers {missing}"
    for n in EXPORTED_BEFORE[module]:
        obj = getattr(mod, n)
        home = getattr(obj, "__module__", None)
        if home and home.startswith("nowcast."):
            assert getattr(importlib.import_module(home), n, obj) is obj, (module, n, home)
