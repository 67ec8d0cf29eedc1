"""Keep secrets in URLs (invite and private-feed tokens) out of access logs."""

from __future__ import annotations

import logging
import re

# /invite/<token> and /private/<token>/… carry bearer secrets (see web/auth.py, web/feeds.py).
SECRET_PATH_RE = re.compile(r"(/invite/|/private/)[^/\s?\"']+")
# Referer and query strings can carry them too, as can "next" parameters.
REDACTED = r"\1[redacted]"


def redact(text: str) -> str:
    """text with every URL token replaced by [redacted]."""
    return SECRET_PATH_RE.sub(REDACTED, text)


class RedactFilter(logging.Filter):
    """A logging filter that redacts URL tokens from the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install(logger_name: str = "werkzeug") -> None:
    """Add the filter to a logger once (the development server logs every request line)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactFilter) for f in logger.filters):
        logger.addFilter(RedactFilter())
