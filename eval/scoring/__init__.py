"""Scoring: answer extraction conventions, per-benchmark metrics, readers for every prediction-file format."""
