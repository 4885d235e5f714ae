"""Reproducible training pipeline for radar-reflectivity nowcasting: ConvLSTM models, DVC curriculum, TITAN-ready forecasts

Modules:

- `nowcast.baselines`: The forecasts a trained model must beat: persistence, optical flow (pysteps Lucas-Kanade + semi-Lagrangian advection), S-PROG (pysteps) and a TITAN-style cell extrapolation.
- `nowcast.cells`: TITAN-style storm cells: identification at 35 dBZ, ellipses, matching between scans, linear extrapolation, and the measures that tell whether a forecast storm *moves* or merely *grows*.
- `nowcast.data`: The path from a folder of raw scans to model-ready windows, in five short chapters: checked **events** and their chronological **split**, what a cached voxel holds (**codes**), which **radars** the model learns from, the **prepare** stage that writes the cache once, and the **cache** reader with the torch datasets training reads.
- `nowcast.evaluate`: The `evaluate` stage: the trained model and the baselines of `evaluate.methods` (persistence, optical flow and S-PROG from pysteps, TITAN-style) forecast the same **test** windows, which no training phase has seen; every forecast is scored at every lead (CSI/POD/FAR/bias, FSS, MAE), and its storm cells are matched to the observed ones to tell whether the forecast storms **move** or merely **grow**.
- `nowcast.grids`: Radar grids and their projections: the `Grid`, the map projections LROSE/TITAN understands and the attributes each needs, the checks a scan's grid must pass, and the way from a pysteps PROJ string to CF grid-mapping attributes, pixel longitudes and latitudes, and a cartopy map projection.
- `nowcast.inference`: One place for the contract between a training checkpoint and everything that runs the model: where it runs (the device policy), in which precision (autocast), how a checkpoint becomes a model, and the path "dBZ scans -> normalised input -> model -> dBZ forecast".
- `nowcast.io`: One reader and one writer for the gridded CF NetCDF that NCAR's LROSE/TITAN writes and reads (the project's radar-NetCDF design note, sections 1 and 2), in five short chapters.
- `nowcast.radar_import`: Real radar into the archive: national composite files (KNMI, RMI, BoM, MRMS, OPERA and the other formats `pysteps.io` reads) become one CF NetCDF scan per file in LROSE's `<event>/yyyymmdd/hhmmss.nc` layout, one level, reflectivity in dBZ.
- `nowcast.report`: The `report` stage: one page that says what a whole `dvc repro` did, from the files the other stages leave in `reports/`.
- `nowcast.synthetic`: Synthetic storm events that look like a real TITAN/LROSE archive, so the whole pipeline runs and is tested without downloading anything.
- `nowcast.train`: The training engine: one curriculum phase at a time, with warmup and schedules, mixed precision, gradient accumulation and clipping, atomic checkpoints, exact resume after a kill, SIGTERM handling for pre-empted GPUs, dvclive logs and DistributedDataParallel under `torchrun`.
- `nowcast.verification`: Scores for reflectivity forecasts: contingency counts (CSI, POD, FAR, bias), the fractions skill score, MAE where there is echo, and a `Scoreboard` that pools them over windows.
- `nowcast.viz`: Figures a radar meteorologist looks at: column-maximum maps on the radar's own projection, vertical cross-sections, observed vs forecast sequences, cell ellipses and motion arrows."""

__version__ = "0.1.0"
