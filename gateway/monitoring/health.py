"""Health checks: ``/livez`` from the main loop's heartbeat, ``/readyz`` from the status facts.

``/readyz`` answers in the draft "Health Check Response Format for HTTP APIs"
(``application/health+json``; draft-inadarei-api-health-check): an overall ``status`` of
``pass``, ``warn`` or ``fail`` and ``checks`` keyed ``component:measurement``. Every check is made
from the facts `status` prints (:func:`gateway.monitoring.facts.status_facts`), never from a second
look of its own, so that `status` and the health check cannot disagree. ``fail`` (HTTP 503) means
the gateway cannot do its work now: the store cannot be read or is paused, a source cannot be
read, a delivery failed for good, the disk is full. ``warn`` (HTTP 200) means it works, and
something wants a look: a person is needed, an alarm fires, space runs low.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway import __version__

HEALTH_CONTENT_TYPE = "application/health+json"
#: Below this much free space on the data folder the check warns (the disk full pauses intake).
LOW_FREE_BYTES = 1 << 30

_ORDER = {"pass": 0, "warn": 1, "fail": 2}


def _check(
    status: str,
    *,
    component_type: str,
    now: datetime,
    value: Any = None,
    unit: str | None = None,
    output: str | None = None,
) -> list[dict[str, Any]]:
    check: dict[str, Any] = {"status": status, "componentType": component_type, "time": now.isoformat()}
    if value is not None:
        check["observedValue"] = value
    if unit is not None:
        check["observedUnit"] = unit
    if output:
        check["output"] = output
    return [check]


def readiness(facts: dict[str, Any], *, now: datetime) -> tuple[int, dict[str, Any]]:
    """The HTTP status (200 or 503) and the health document made of ``facts``."""
    paused = {str(p["scope"]): p for p in facts["paused"]}
    attention = facts["attention"]

    def pause_text(scope: str) -> str:
        pause = paused[scope]
        return f"{scope} paused since {pause.get('since')}: {pause.get('cause')}; waiting for {pause.get('waits_for')}"

    checks: dict[str, list[dict[str, Any]]] = {}
    if facts["store_error"] or "store" in paused:
        store_status, output = "fail", facts["store_error"] or pause_text("store")
    else:
        store_status, output = "pass", None
    checks["store:responseTime"] = _check(
        store_status,
        component_type="datastore",
        now=now,
        value=facts["store_response_ms"],
        unit="ms",
        output=output,
    )
    for source in facts["sources"]:
        scope = f"source:{source['name']}"
        if scope in paused or "intake" in paused:
            status, output = "fail", pause_text(scope if scope in paused else "intake")
        elif source.get("error"):
            status, output = "fail", str(source["error"])
        elif source.get("last_scan_at") is None:
            status, output = "warn", "not scanned yet"
        else:
            status, output = "pass", None
        checks[f"source-{source['name']}:lastScan"] = _check(
            status, component_type="component", now=now, value=source.get("last_scan_at"), output=output
        )
    failed = [item for item in attention if item["kind"] == "delivery-failed"]
    if failed:
        status, output = "fail", "; ".join(f"{item['subject']}: {item['message']}" for item in failed)
    elif "delivery" in paused:
        status, output = "warn", pause_text("delivery")
    else:
        status, output = "pass", None
    checks["delivery:lastSuccess"] = _check(
        status, component_type="component", now=now, value=facts["last_delivery_at"], output=output
    )
    free = facts["data_free_bytes"]
    full = [scope for scope, pause in paused.items() if "free space" in str(pause.get("waits_for", ""))]
    if full:
        status, output = "fail", pause_text(full[0])
    elif free is None:
        status, output = "warn", f"the free space of {facts['data_dir']} cannot be read"
    elif free < LOW_FREE_BYTES:
        status, output = "warn", f"less than {LOW_FREE_BYTES >> 20} MiB free in {facts['data_dir']}"
    else:
        status, output = "pass", None
    checks["data:freeBytes"] = _check(
        status, component_type="system", now=now, value=free, unit="bytes", output=output
    )
    alarms = facts["alarms"]
    checks["alarms:firing"] = _check(
        "warn" if alarms else "pass",
        component_type="component",
        now=now,
        value=len(alarms),
        output="; ".join(f"{a['alarm']} {a['subject']}" for a in alarms) or None,
    )
    uploads = facts.get("receipt_uploads") or {"pending": 0, "failing": 0}
    # Copies of receipts for the senders that failed and wait for their next try (a receipt
    # folder's server down, say): a warning, since the local receipts are out; refused ones are
    # in attention.
    checks["receipts:backlog"] = _check(
        "warn" if uploads["failing"] else "pass",
        component_type="component",
        now=now,
        value=uploads["pending"],
        output=f"{uploads['failing']} failing, oldest queued {uploads['oldest_queued_at']}"
        if uploads["failing"]
        else None,
    )
    checks["attention:count"] = _check(
        "warn" if attention else "pass",
        component_type="component",
        now=now,
        value=len(attention),
        output="; ".join(f"[{item['kind']}] {item['subject']}" for item in attention) or None,
    )
    overall = max((c[0]["status"] for c in checks.values()), key=_ORDER.__getitem__, default="pass")
    document = {
        "status": overall,
        "version": "1",
        "releaseId": __version__,
        "serviceId": facts["data_dir"],
        "description": "inkasso-gateway: the same facts as `inkasso-gateway status --format json`",
        "checks": checks,
    }
    return (503 if overall == "fail" else 200), document
