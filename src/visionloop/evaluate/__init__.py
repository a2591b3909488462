"""Evaluation: COCO metrics, the confusion matrix and the plots of both.

- :mod:`visionloop.evaluate.metrics` — :func:`coco_metrics` runs pycocotools on
  :class:`~visionloop.types.Detections` and returns an :class:`EvalResult`
  (the summary ``metrics`` dict plus the raw arrays plots need).
- :mod:`visionloop.evaluate.confusion` — :func:`confusion_matrix`, numpy only.
- :mod:`visionloop.evaluate.plots` — PR curves and the confusion matrix as PNG
  files (matplotlib, headless, loaded on first use).
"""
