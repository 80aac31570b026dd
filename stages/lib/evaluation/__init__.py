"""Evaluation: scoring held-out text and benchmark tasks."""
