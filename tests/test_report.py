"""`nowcast report` (the run summary) from the files the stages leave in reports/: the move-or-grow sentence weighs the
model's cells against the motion baseline (optical flow) and persistence, as on the real-radar test split."""
import json

import pytest

from nowcast import cli


def _reports(tmp_path, metrics: dict):
    "A reports/ folder holding what `evaluate` writes for the summary: metrics.json and the CSI-by-lead table."
    reports = tmp_path / "reports"
    (reports / "evaluation").mkdir(parents=True)
    (reports / "metrics.json").write_text(json.dumps(metrics))
    methods = list(metrics)
    (reports / "evaluation" / "csi35_by_lead.csv").write_text(
        "lead_min," + ",".join(methods) + "\n" + "\n".join(f"{l},0.5," + ",".join(["0.3"] * (len(methods) - 1)) for l in (5, 10)) + "\n")
    return reports


REAL = {"model": {"displacement_km_mean": 14.5, "area_ratio_mean": 1.61}, "persistence": {"displacement_km_mean": 17.9},
        "optical_flow": {"displacement_km_mean": 14.5}}  # the real-radar test split (reports/real_radar.md)


@pytest.mark.parametrize("metrics, sentence", [
    (REAL, "- Its storm cells are 14.5 km from the observed ones on average (optical flow: 14.5 km, persistence: 17.9 km), "
           "area ratio 1.61: they move with the observed storms (as close to them as optical flow's) and grow."),
    ({m: v for m, v in REAL.items() if m != "optical_flow"},   # no motion baseline: persistence's rule, as before
     "- Its storm cells are 14.5 km from the observed ones on average (persistence: 17.9 km), "
     "area ratio 1.61: they stay about where they were (like persistence) and grow."),
], ids=["with_optical_flow", "persistence_only"])
def test_summary_says_whether_the_cells_move_against_both_baselines(tmp_path, capsys, metrics, sentence):
    reports = _reports(tmp_path, metrics)
    assert cli.main(["report", "--reports-dir", str(reports), "--params", str(tmp_path / "none.yaml")]) == 0
    lines = (reports / "summary.md").read_text().splitlines()
    assert sentence in lines, "\n".join(l for l in lines if "storm cells" in l)
    assert sentence in capsys.readouterr().out


def test_without_intervals_the_summary_compares_point_values(tmp_path):
    "An older run (no csi_intervals.csv): the sentence of the point values, as before."
    reports = _reports(tmp_path, {"model": {}, "persistence": {}})
    assert cli.main(["report", "--reports-dir", str(reports), "--params", str(tmp_path / "none.yaml")]) == 0
    text = (reports / "summary.md").read_text()
    assert "- The model's CSI beats persistence at every lead." in text.splitlines() and "interval" not in text


INTERVAL_HEADER = "method,threshold_dbz,lead_min,model_csi,baseline_csi,diff,lo,hi,words,blocks,n_boot,block_by,level"


def _interval_rows(block_by="event", blocks=18):
    "csi_intervals.csv as evaluate writes it: against optical flow level at t+5, beats at t+10; below persistence at t+5."
    rows = []
    for thr in (20, 35, 40):
        for m, lead, diff, lo, hi, words in (("persistence", 5, -0.06, -0.1, -0.02, "below"), ("persistence", 10, 0.02, -0.01, 0.05, "level with"),
                                             ("optical_flow", 5, 0.01, -0.03, 0.04, "level with"), ("optical_flow", 10, 0.187, 0.12, 0.251, "beats")):
            rows.append(f"{m},{thr},{lead},0.5,{0.5 - diff},{diff},{lo},{hi},{words},{blocks},2000,{block_by},0.95")
    return INTERVAL_HEADER + "\n" + "\n".join(rows) + "\n"


def _scores(reports):
    "scores.csv's column-maximum rows at 20, 35 and 40 dBZ for the three methods."
    cols = "method,field,lead_min,threshold_dbz,hits,misses,false_alarms,correct_negatives,csi,windows,windows_observed"
    rows = [f"{m},cmax,{l},{t},50,50,0,900,0.5,20,10" for m in ("model", "persistence", "optical_flow") for t in (20, 35, 40) for l in (5, 10)]
    (reports / "evaluation" / "scores.csv").write_text(cols + "\n" + "\n".join(rows) + "\n")


@pytest.mark.parametrize("block_by, blocks, over", [("event", 18, "whole test events (18 test events"),
                                                     ("hour", 42, "whole radar-hours of the test events (42 radar-hours")])
def test_summary_states_each_claim_with_its_interval(tmp_path, block_by, blocks, over):
    "With csi_intervals.csv: beats / level with / below as the interval says, the interval quoted, a table per threshold."
    reports = _reports(tmp_path, {"model": {}, "persistence": {}, "optical_flow": {}})
    _scores(reports)
    (reports / "evaluation" / "csi_intervals.csv").write_text(_interval_rows(block_by, blocks))
    assert cli.main(["report", "--reports-dir", str(reports), "--params", str(tmp_path / "none.yaml")]) == 0
    lines = (reports / "summary.md").read_text().splitlines()
    kind = "test events" if block_by == "event" else "radar-hours"
    # the point values say "beats persistence at every lead" (0.5 > 0.3); the intervals say below at t+5 and level at t+10
    assert "- The model's CSI beats persistence at every lead." not in lines
    assert (f"- Against persistence the model's CSI beats it at no lead, is level with it at t+10 min and below it at t+5 min "
            f"(difference at t+10: +0.020, 95% interval -0.010 to +0.050, over {blocks} {kind}).") in lines
    assert (f"- Against optical flow the model's CSI beats it at t+10 min, is level with it at t+5 min and below it at no lead "
            f"(difference at t+10: +0.187, 95% interval +0.120 to +0.251, over {blocks} {kind}).") in lines
    assert sum(l.startswith("- Against optical flow") for l in lines) == 3   # 35 dBZ, and the 20 and 40 dBZ tables
    assert not any(l.startswith("- The model's CSI beats") for l in lines)   # every claim comes with its interval
    said = next(l for l in lines if l.startswith("The differences model - baseline"))
    assert over in said and "2000 draws" in said
    for thr in (35, 20, 40):
        head = f"Model - baseline CSI at {thr} dBZ, 95% interval (paired bootstrap over {blocks} {kind}):"
        table = lines[lines.index(head) + 2: lines.index(head) + 6]
        assert table == ["| lead (min) | persistence | optical_flow |", "|---|---|---|",
                         "| 5 | -0.060 (-0.100, -0.020) | +0.010 (-0.030, +0.040) |",
                         "| 10 | +0.020 (-0.010, +0.050) | +0.187 (+0.120, +0.251) |"], table


def test_a_lead_whose_event_lies_in_few_blocks_has_no_interval_and_says_why(tmp_path):
    "Real radar's 35 dBZ cores in 2 of 20 radar-hours: no interval there, and the sentence says why (not 'beats')."
    reports = _reports(tmp_path, {"model": {}, "optical_flow": {}})
    _scores(reports)
    header = INTERVAL_HEADER.replace("blocks,n_boot", "blocks,event_blocks,n_boot")
    rows = [f"optical_flow,{thr},5,0.5,0.48,0.02,,,undefined,20,2,2000,hour,0.95" for thr in (20, 35, 40)]
    rows += [f"optical_flow,{thr},10,0.5,0.4,0.1,0.05,0.15,beats,20,12,2000,hour,0.95" for thr in (20, 35, 40)]
    (reports / "evaluation" / "csi_intervals.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    assert cli.main(["report", "--reports-dir", str(reports), "--params", str(tmp_path / "none.yaml")]) == 0
    lines = (reports / "summary.md").read_text().splitlines()
    assert ("- Against optical flow the model's CSI beats it at t+10 min, is level with it at no lead and below it at no lead; "
            "it has no interval at t+5 min (the event lies in only 2 of the 20 radar-hours there: too few to draw again) "
            "(difference at t+10: +0.100, 95% interval +0.050 to +0.150, over 20 radar-hours).") in lines, lines
    assert "| 5 | +0.020 (-) |" in lines


def test_a_threshold_without_any_interval_claims_nothing(tmp_path):
    "Every lead undefined (the cores in 2 radar-hours): one sentence that says so, no 'beats', no quoted interval."
    reports = _reports(tmp_path, {"model": {}, "optical_flow": {}})
    _scores(reports)
    header = INTERVAL_HEADER.replace("blocks,n_boot", "blocks,event_blocks,n_boot")
    rows = [f"optical_flow,{thr},{lead},0.5,0.48,0.02,,,undefined,20,2,2000,hour,0.95" for thr in (20, 35, 40) for lead in (5, 10)]
    (reports / "evaluation" / "csi_intervals.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    assert cli.main(["report", "--reports-dir", str(reports), "--params", str(tmp_path / "none.yaml")]) == 0
    lines = (reports / "summary.md").read_text().splitlines()
    assert ("- Against optical flow there is no interval at any lead (the event lies in only 2 of the 20 radar-hours there: "
            "too few to draw again): the table's point values alone decide nothing.") in lines, lines
