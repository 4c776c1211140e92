"""Evaluation in production: is a model version good enough to serve, and better?

- :mod:`~headwater.evaluation.metrics`: streaming metrics, cumulative or over a window;
"""
