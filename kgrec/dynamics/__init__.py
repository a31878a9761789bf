"""Interests that move: incremental ``update`` of a fitted estimator on new interactions (new
periods, new users and items, new scenarios) and inductive scoring of users from a history given at
call time. Above ``kgrec.models``; ``kgrec.api`` calls it. Time-decay weights themselves are data
preparation and live in :mod:`kgrec.data.decay`.
"""
