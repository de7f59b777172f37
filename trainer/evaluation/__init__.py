"""Measuring colour: the metrics, scoring a model beside the gray baseline, contact sheets and plots.

One module per job: `metrics` (per photo, in the graph), `evaluator` (a network's scores on a strategy's
replicas), `photo_sets` (what is scored: records, the held-out photos, files), `scoring` (means overall
and per class, a report's content), `extremes` (best and worst photos, the contact sheet), `progress`,
`loading` (the model, decoded as asked), `report_files` (metrics.json, metrics.md, contact_sheet.png),
`run` (the steps of `python -m trainer.evaluate`), `sheets` and `plots` (pictures).
"""
