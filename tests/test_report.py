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


PROB_SCORES = "method,threshold_dbz,lead_min,windows,pixels,obar,brier,brier_clim,bss,bss_se,block_by,blocks"
PROB_IV = "method,reference,threshold_dbz,lead_min,reference_bss,method_bss,diff,se,lo,hi,words,blocks,event_blocks,n_boot,block_by,level"
PROB_REL = "method,threshold_dbz,lead_min,bin,p_lo,p_hi,forecast_mean,observed_freq,pixels,pixel_frac"


def _prob_reports(tmp_path, intervals=True, reliability=True):
    """reports/ after an evaluate run with a probability head: scores.csv as evaluate now writes it (counts as 3.0, the
    probabilities' own rows without counts), prob_scores.csv, and optionally prob_intervals.csv and prob_reliability.csv."""
    reports = _reports(tmp_path, {"model": {}, "optical_flow": {}})
    cols = "method,field,lead_min,threshold_dbz,hits,misses,false_alarms,correct_negatives,csi,windows,windows_observed,brier,bss"
    rows = [f"{m},cmax,{l}.0,35.0,50.0,50.0,0.0,900.0,0.5,295.0,10.0,0.05,-0.4" for m in ("model", "optical_flow") for l in (5, 10)]
    rows += [f"model_probability,cmax,{l}.0,35.0,,,,,,,,0.03,0.3" for l in (5, 10)]
    (reports / "evaluation" / "scores.csv").write_text(cols + "\n" + "\n".join(rows) + "\n")
    bss = {"model_probability": 0.31, "model_neighbourhood": 0.25, "optical_flow_neighbourhood": 0.2, "lagrangian_probability": 0.22,
           "steps": 0.28, "model": -0.4, "persistence": -0.6}
    (reports / "evaluation" / "prob_scores.csv").write_text(PROB_SCORES + "\n" + "".join(
        f"{m},{t}.0,{l}.0,60,36000,0.04,0.03,0.04,{b - l / 100:.3f},0.02,event,18\n" for t in (20, 35, 40) for m, b in bss.items() for l in (5, 10)))
    if intervals:   # the point differences are all > 0; the intervals say otherwise at t+10
        iv = [("model_neighbourhood", 5, 0.06, 0.02, 0.03, 0.09, "beats"), ("model_neighbourhood", 10, 0.01, 0.02, -0.03, 0.05, "level with"),
              ("steps", 5, 0.03, 0.01, 0.01, 0.05, "beats"), ("steps", 10, 0.02, 0.02, -0.02, 0.06, "level with"),
              ("lagrangian_probability", 5, 0.09, 0.02, 0.05, 0.13, "beats"), ("lagrangian_probability", 10, 0.09, 0.02, 0.05, 0.13, "beats"),
              ("model", 5, 0.7, 0.1, 0.5, 0.9, "beats"), ("model", 10, 0.7, 0.1, 0.5, 0.9, "beats")]
        (reports / "evaluation" / "prob_intervals.csv").write_text(PROB_IV + "\n" + "".join(
            f"{m},model_probability,{t}.0,{l}.0,0.3,{0.3 - d},{d},{se},{lo},{hi},{w},18,18,1000,event,0.95\n"
            for t in (20, 35, 40) for m, l, d, se, lo, hi, w in iv))
    if reliability:   # 35 dBZ: pooled over the two leads, 30-40% comes true 25% of the time; 40 dBZ: never 10% or more
        bins = {35: [(0, 30000, 0.01, 0.005), (3, 600, 0.34, 0.25), (7, 400, 0.72, 0.6), (9, 10, 0.95, 0.9)], 40: [(0, 36000, 0.01, 0.01)]}
        (reports / "evaluation" / "prob_reliability.csv").write_text(PROB_REL + "\n" + "".join(
            f"model_probability,{t}.0,{l}.0,{k},{k / 10},{(k + 1) / 10},{f},{o},{n},{n / 36000}\n" for t, b in bins.items() for l in (5, 10) for k, n, f, o in b))
    (reports / "probability_train.json").write_text(json.dumps({
        "thresholds_dbz": [20.0, 35.0, 40.0], "fit_split": "train", "train_windows": 400, "val_windows": 120, "train_pixels": 102400,
        "val_bss_start": [[0.5, 0.4], [0.2, 0.1], [0.1, 0.0]], "val_bss_trained": [[0.55, 0.45], [0.26, 0.14], [0.1, 0.02]], "seconds": 41.5}))
    return reports


def _summary(reports, tmp_path):
    assert cli.main(["report", "--reports-dir", str(reports), "--params", str(tmp_path / "none.yaml")]) == 0
    return (reports / "summary.md").read_text().splitlines()


def test_an_older_run_says_no_probabilities_were_scored(tmp_path):
    lines = _summary(_reports(tmp_path, {"model": {}, "persistence": {}}), tmp_path)
    start = lines.index("## Probabilities")
    assert lines[start + 2].startswith("No probabilities were scored in this run")


def test_the_probabilities_section_states_each_claim_by_its_interval(tmp_path):
    lines = _summary(_prob_reports(tmp_path), tmp_path)
    assert ("Scored on 60 of the 295 test windows (evenly spread within each radar's test windows, `evaluate.prob_max_windows`): every method on the same 60 windows, "
            "in 18 test events, each drawn again whole for the standard errors and intervals.") in lines[lines.index("## Probabilities") + 2]
    head = lines.index("BSS at 35 dBZ:")
    assert lines[head + 2] == ("| lead (min) | observed ≥ 35 dBZ | model, trained probability | model, neighbourhood (untrained start) | "
                               "neighbourhood of optical flow | local Lagrangian probability (pysteps) | STEPS ensemble (pysteps) | model, 0 or 1 |")
    assert lines[head + 4] == "| 5 | 4.0% | 0.260 ± 0.020 | 0.200 ± 0.020 | 0.150 ± 0.020 | 0.170 ± 0.020 | 0.230 ± 0.020 | -0.450 ± 0.020 |"
    assert ("- What training bought at 35 dBZ, the trained probability's BSS minus its untrained start's (the neighbourhood fraction "
            "of the model's forecast), ± one standard error: +0.060 ± 0.020 at t+5, +0.010 ± 0.020 at t+10 min.") in lines
    assert ("- Against its untrained start the trained probability's BSS beats it at t+5 min, is level with it at t+10 min and below it "
            "at no lead (difference at t+10: +0.010, 95% interval -0.030 to +0.050, over 18 test events).") in lines
    assert ("- Against STEPS ensemble (pysteps) the trained probability's BSS beats it at t+5 min, is level with it at t+10 min "
            "and below it at no lead (difference at t+10: +0.020, 95% interval -0.020 to +0.060, over 18 test events).") in lines
    assert any(l.startswith("- Against local Lagrangian probability (pysteps) the trained probability's BSS beats it at every lead") for l in lines)
    assert not any(l.startswith("- Against model, 0 or 1") for l in lines)   # the summary weighs the probabilistic baselines
    table = lines.index("Trained probability - baseline BSS at 35 dBZ, 95% interval (paired bootstrap over 18 test events):")
    assert lines[table + 4] == "| 5 | +0.030 (+0.010, +0.050) | +0.090 (+0.050, +0.130) |", lines[table:table + 6]
    assert ("- At 35 dBZ: when the trained probability says 30-40% (34% on average, 1,200 pixels), the radar saw ≥ 35 dBZ there 25% of "
            "the time; when it says 70-80% (72% on average, 800 pixels), 60% of the time (all leads pooled; bins holding at least 1% "
            "of the 2,020 pixels given 10% or more).") in lines   # 90-100% holds 20 of them, under 1%: not quoted
    assert "- At 40 dBZ the trained probability never says 10% or more." in lines
    # the CSI part reads scores.csv as evaluate writes it now (counts as 3.0, the probabilities' rows without counts)
    assert "- Observed at or above 35 dBZ: 100 pixels per lead, in 10 of the 295 windows." in lines
    assert not any(l.startswith("| model_probability |") for l in lines)
    assert ("- The head (`nowcast probability`) was fitted on 102,400 pixels of the model's forecasts of 400 train windows in 41.5 s; "
            "on the 120 validation windows its BSS at 35 dBZ, mean over leads, went from 0.150 (the start) to 0.200.") in lines


def test_without_intervals_or_reliability_the_section_keeps_the_table(tmp_path):
    lines = _summary(_prob_reports(tmp_path, intervals=False, reliability=False), tmp_path)
    assert "BSS at 35 dBZ:" in lines and not any("What training bought" in l or "the trained probability says" in l for l in lines)
