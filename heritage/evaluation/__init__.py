"""Evaluation: ground truth and scores.

* :mod:`~heritage.evaluation.zoo` — a ground-truth zoo built by real fine-tuning of
  packaged pretrained weights (needs PyTorch);
* :mod:`~heritage.evaluation.synthetic` — small synthetic families with known parents,
  for fast tests;
* :mod:`~heritage.evaluation.scoring` — recovered genealogies scored against the truth;
* :mod:`~heritage.evaluation.baselines` — the published MoTHer recipe and the seed
  system's recipe, run side by side with ours.

Nothing is imported here: the zoo needs PyTorch, which the rest of the package does not.
"""
