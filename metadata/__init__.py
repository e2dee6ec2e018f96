"""Metric records, the metrics store and MetadataAccess (predictions for the planner).

This package imports no other planflow package. Filled in by the metadata issue.
"""
