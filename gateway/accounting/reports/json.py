"""The reconciliation report's figures for a monitoring system: ``summary_json(report, written)``.

A renderer only: a JSON-ready ``dict`` of the figures the page shows (the full tables, one row per
day, journal, rule or file, are in the CSV files). Amounts are whole öre (integers, exact);
shares are percentages rounded to one decimal, as the page and the CSV show them. Keys are only
ever added, never renamed or removed: a monitoring system reads them by name.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from gateway.accounting.reports.model import TALLY_COUNTS, Report
from gateway.domain.identity import mask_identities

__all__ = ["summary_json"]


def _share(percent: float | None) -> float | None:
    # One decimal, the same rounding as the page's and the CSV's "51,2 %" (both format the float).
    return None if percent is None else round(percent, 1)


def summary_json(report: Report, written: list[Path]) -> dict[str, Any]:
    """The report's figures for a monitoring system (the full tables are in the CSV files)."""
    total = report.total
    shares = {item.state: item.share_percent for item in report.capital_now}
    key_figures = asdict(report.key_figures)
    key_figures["capital_journaled_percent"] = _share(report.key_figures.capital_journaled_percent)
    return {
        "period_from": report.period_from.isoformat(),
        "period_to": report.period_to.isoformat(),
        "client": report.client,
        "balanced": report.balanced,
        "settled": report.settled,
        "files_arrived": len(report.files),
        "waiting_for_a_person": [
            {"kind": w.kind, "subject": w.subject, "message_sv": w.message_sv, "message_en": w.message_en}
            for w in report.waiting
        ],
        "discrepancies": [
            {
                "kind": d.kind,
                "subject": mask_identities(d.subject),
                "message_sv": d.message_sv,
                "message_en": d.message_en,
            }
            for d in report.discrepancies
        ],
        "sequence_gaps": [{"client": gap.client, "missing": list(gap.missing)} for gap in report.gaps],
        "totals": {name: getattr(total, name) for name in TALLY_COUNTS},
        "delivered_capital_ore": report.delivered_capital_ore,
        "journals": {
            state: len(report.journals_in(state)) for state in ("open", "sealed", "approved", "delivered")
        },
        "capital_by_state": {
            item.state: {
                "cases": item.cases,
                "capital_ore": item.capital_ore,
                "share_percent": _share(shares[item.state]),
            }
            for item in report.capital_by_state
        },
        "cases_waiting_for_review": report.attention_total,
        "latencies": [
            {
                "name": latency.name,
                "count": latency.count,
                "median_seconds": latency.median_seconds,
                "p95_seconds": latency.p95_seconds,
                "max_seconds": latency.max_seconds,
            }
            for latency in report.latencies
        ],
        "key_figures": key_figures,
        "per_client": [
            {
                "client": figures.client,
                **{name: getattr(figures.tally, name) for name in TALLY_COUNTS},
                "journals_delivered": figures.journals_delivered,
                "delivered_capital_ore": figures.delivered_capital_ore,
            }
            for figures in report.per_client
        ],
        "top_rejection_reasons": [
            {"code": reason.code, "findings": reason.findings, "by_client": dict(reason.by_client)}
            for reason in report.top_rejection_reasons
        ],
        "findings_per_rule": [
            {"code": rule.code, "severity": rule.severity, "findings": rule.findings, "files": rule.files}
            for rule in report.rules_by_code
        ],
        "journals_total": {
            "count": len(report.journals),
            "cases": report.journal_cases,
            "capital_ore": report.journal_capital_ore,
        },
        "gateway_version": report.stamp.gateway_version,
        "ruleset_version": report.stamp.ruleset_version,
        "config_sha256": report.stamp.config_sha256,
        "receipt_chain_head": report.chain_head,
        "written": [str(path) for path in written],
    }
