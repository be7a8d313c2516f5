"""The receipt chain: every receipt names the SHA-256 of the receipt written before it."""

from __future__ import annotations

#: What the first receipt names as its predecessor.
GENESIS_SHA256 = "0" * 64
