"""Reproducible training pipeline for radar-reflectivity nowcasting: ConvLSTM models, DVC curriculum, TITAN-ready forecasts

Modules:

- `nowcast.baselines`: The forecasts a trained model must beat: persistence, optical flow (pysteps Lucas-Kanade + semi-Lagrangian advection), S-PROG (pysteps) and a TITAN-style cell extrapolation.
- `nowcast.batches`: A batch's way through training: the order the windows come in (a permutation per epoch, split between ranks, resumable mid-epoch), the quarter turn that augments it, the device, the forward pass under autocast and its loss, the backward pass, and the validation pass; with the few collective calls that keep ranks in step.
- `nowcast.cells`: TITAN-style storm cells: identification at 35 dBZ, ellipses, matching between scans, linear extrapolation, and the measures that tell whether a forecast storm *moves* or merely *grows*.
- `nowcast.checkpoints`: What a training checkpoint holds besides the weights, and where a phase keeps its checkpoints: the RNG states that make a resumed run exact, the atomic write, when a mid-epoch checkpoint is due, a phase's `best`, `last` and `epoch_NNN` files, and which checkpoint a phase resumes from.
- `nowcast.data`: The path from a folder of raw scans to model-ready windows, in five short chapters: checked **events** and their chronological **split**, what a cached voxel holds (**codes**), which **radars** the model learns from, the **prepare** stage that writes the cache once, and the **cache** reader with the torch datasets training reads.
- `nowcast.engine`: The training engine: one curriculum phase at a time, with warmup and schedules, mixed precision, gradient accumulation and clipping, atomic checkpoints, exact resume after a kill, SIGTERM handling for pre-empted GPUs, dvclive logs and DistributedDataParallel under `torchrun`.
- `nowcast.evaluate`: The `evaluate` stage: the trained model and the baselines of `evaluate.methods` (persistence, optical flow and S-PROG from pysteps, TITAN-style) forecast the same **test** windows, which no training phase has seen; every forecast is scored at every lead (CSI/POD/FAR/bias, FSS, MAE), and its storm cells are matched to the observed ones to tell whether the forecast storms **move** or merely **grow**.
- `nowcast.grids`: Radar grids and their projections: the `Grid`, the map projections LROSE/TITAN understands and the attributes each needs, the checks a scan's grid must pass, and the way from a pysteps PROJ string to CF grid-mapping attributes, pixel longitudes and latitudes, and a cartopy map projection.
- `nowcast.inference`: One place for the contract between a training checkpoint and everything that runs the model: where it runs (the device policy), in which precision (autocast), how a checkpoint becomes a model, and the path "dBZ scans -> normalised input -> model -> dBZ forecast".
- `nowcast.io`: One reader and one writer for the gridded CF NetCDF that NCAR's LROSE/TITAN writes and reads (the project's radar-NetCDF design note, sections 1 and 2), in five short chapters.
- `nowcast.radar_import`: Real radar into the archive: national composite files (KNMI, RMI, BoM, MRMS, OPERA and the other formats `pysteps.io` reads) become one CF NetCDF scan per file in LROSE's `<event>/yyyymmdd/hhmmss.nc` layout, one level, reflectivity in dBZ.
- `nowcast.report`: The `report` stage: one page that says what a whole `dvc repro` did, from the files the other stages leave in `reports/`.
- `nowcast.schedule`: A curriculum phase in time: the global epochs it trains, the learning rate of each optimizer step (a warmup, then constant, plateau or cosine), and the moving average of the weights over its steps; the schedule and the average are small objects whose state travels in the checkpoint.
- `nowcast.synthetic`: Synthetic storm events that look like a real TITAN/LROSE archive, so the whole pipeline runs and is tested without downloading anything.
- `nowcast.train`: The training stage: `nowcast train --phase N` builds a curriculum phase's windows, model and loss from the params and trains it with the engine, in one process or, with `train.nproc_per_node` > 1, in several under `torchrun`.
- `nowcast.verification`: Scores for reflectivity forecasts: contingency counts (CSI, POD, FAR, bias), the fractions skill score, MAE where there is echo, and a `Scoreboard` that pools them over windows.
- `nowcast.viz`: Figures a radar meteorologist looks at: column-maximum maps on the radar's own projection, vertical cross-sections, observed vs forecast sequences, cell ellipses and motion arrows."""

__version__ = "0.1.0"
