"""Measuring colour: the metrics, scoring a model beside the gray baseline, contact sheets and plots."""
