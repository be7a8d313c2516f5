"""The gateway's command line with a fault planted from $GATEWAY_TEST_FAULT (tests only).

`python tests/faulty_gateway.py run --config ...` behaves exactly like `inkasso-gateway run`,
except that files whose name holds the marker make it exit, raise or hang (see tests/faults.py),
or, with ``hang-loop:<path>``, that its main loop hangs at its next heartbeat for as long as the
file ``<path>`` exists (and goes on once it is removed), or, with
``exit-before-receipt-upload:<path>``, that it dies just before it first sends a copy of a receipt
back to a sender while ``<path>`` exists.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway import monitoring
from gateway.cli import main
from gateway.service import intake as pipeline
from gateway.service import receipts
from tests.faults import FAULT_ENV, dying_before_receipt_upload, faulty, hanging_heartbeat

kind, _, marker = os.environ.get(FAULT_ENV, "").partition(":")
if kind == "hang-loop":
    monitoring.Heartbeat = hanging_heartbeat(Path(marker))  # type: ignore[misc]
elif kind == "exit-before-receipt-upload":
    receipts.ReceiptReturns._send = dying_before_receipt_upload(  # type: ignore[method-assign]
        receipts.ReceiptReturns._send, Path(marker)
    )
elif marker:
    pipeline.validate_file = faulty(pipeline.validate_file, kind, marker)
sys.exit(main())
