"""The reconciliation report, in one package: one model, several renderings of the same figures.

- :mod:`~gateway.accounting.reports.model`: the data and all the arithmetic. Every figure any
  rendering shows (totals, sums per day and per client, shares, the top rejection reasons, the
  findings per rule, the key figures) is a property of the :class:`~.model.Report`, computed in
  one place so that no two renderings can disagree.
- :mod:`~gateway.accounting.reports.build`: from the store to the model (``build_report``), and the
  model to the report's files in ``outbox/reports/`` (``write_report``: the page and the CSVs).
- Renderers, which only format what the model holds:
  :mod:`~gateway.accounting.reports.html` (the page), :mod:`~gateway.accounting.reports.svg` (its
  charts), :mod:`~gateway.accounting.reports.csv` (one table per file),
  :mod:`~gateway.accounting.reports.text` (what `report` prints) and
  :mod:`~gateway.accounting.reports.json` (what `report --format json` prints).

The page, the CSV files and the JSON summary show the same figures; tests/test_report_consistency.py
reads them back out of each and compares. None of these files is read by another system the way
a receipt or a journal is, so none has an XSD, and none lives in :mod:`gateway.formats`.
"""
