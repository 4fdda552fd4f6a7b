"""WhatsApp's customer service window: free-form messages only within 24 hours of the customer's last message.

Outside it, Meta refuses anything but an approved template (error 131047). One home for that rule.
"""

from __future__ import annotations

__all__ = ["SERVICE_WINDOW_SECONDS", "closes_at", "is_open"]

SERVICE_WINDOW_SECONDS = 24 * 3600.0


def closes_at(last_inbound: float | None) -> float | None:
    """When the window closes (a Unix time), or None when the customer never wrote."""
    return None if last_inbound is None else last_inbound + SERVICE_WINDOW_SECONDS


def is_open(last_inbound: float | None, *, now: float) -> bool:
    """Whether a free-form message may be sent now to a customer who last wrote at `last_inbound`."""
    end = closes_at(last_inbound)
    return end is not None and now < end
