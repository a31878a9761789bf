"""Evaluation: metrics with known-answer definitions, tie-stable ranking, the full-ranking evaluator
and paired significance tests. Depends on ``kgrec.data`` only; models and training call it.
"""
