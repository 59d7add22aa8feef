"""Workflows that compose the sibling packages (training, probing, reporting): Grad-CAM on
sampled clips (:mod:`bebias.workflows.cam`), many checkpoints probed in one pass with their
leaderboard (:mod:`bebias.workflows.probe_many`) and the one-command story (:mod:`bebias.workflows.demo`).
The CLI is a thin layer over these."""
