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
