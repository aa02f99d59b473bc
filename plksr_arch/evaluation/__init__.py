"""Evaluation: per-image metrics and the bicubic baseline, reference results, tables, comparison strips, curves."""
