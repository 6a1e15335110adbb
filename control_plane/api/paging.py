"""Markers of the paginated list operations.

A marker is the sort key of the last item of a page, base64url-encoded so a
client treats it as opaque; the next page starts after that key, so items
added or removed meanwhile never shift a page.
"""

from __future__ import annotations

import base64
import binascii

from lambdafleet.errors import invalid_parameter


def encode_marker(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def decode_marker(marker: str) -> str:
    """The key a marker names ("" for none); AWS's error for a bad one."""
    if not marker:
        return ""
    try:
        return base64.urlsafe_b64decode(marker.encode()).decode()
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise invalid_parameter(f"Invalid marker: {marker}") from None
