"""Platform model and discrete-event simulation of a plan (makespan, cost).

This package imports no other planflow package: it works on a numeric model (arrays of
durations, sizes, edges) that the planner builds. Filled in by the simulator issue.
"""
