"""Reproducible training pipeline for radar-reflectivity nowcasting: ConvLSTM models, DVC curriculum, TITAN-ready forecasts

Modules:

- `nowcast.cells`: TITAN-style storm cells: identification at 35 dBZ, ellipses, matching between scans, linear extrapolation, and the measures that tell whether a forecast storm *moves* or merely *grows*."""

__version__ = "0.1.0"
