"""Keep secrets in URLs (invite and private-feed tokens) out of access logs."""

from __future__ import annotations

import logging
import re

# A slash as it appears in a log line: itself, or percent-encoded once or more ("%2F", "%252F", …),
# which is how a path travels inside a query string (`next=%2Fprivate%2F<token>%2Ffeed.rss`).
_SLASH = r"(?:/|%(?:25)*2[fF])"
# Where a token ends: a (possibly encoded) slash, "?", "&", "#" or ";", a quote, or whitespace.
_END = r"(?:/|%(?:25)*(?:2[fF]|3[fF]|26|23|3[bB])|[\s?&#;\"'])"


def _word(word: str) -> str:
    """word with each letter also matched percent-encoded (the router decodes "/%69nvite/" to "/invite/")."""
    return "".join(rf"(?:{c}|%(?:25)*(?:{ord(c.lower()):02x}|{ord(c.upper()):02x}))" for c in word)


# /invite/<token>, /private/<token>/… and /screen/<token>… carry bearer secrets (see web/auth.py, web/feeds.py, web/screens.py); case-insensitive,
# so an oddly written path is redacted too rather than logged, and with repeated slashes (the router merges them).
SECRET_PATH_RE = re.compile(rf"({_SLASH}(?:{_word('invite')}|{_word('private')}|{_word('screen')}){_SLASH}+)(?:(?!{_END}).)+",
                            re.IGNORECASE)
REDACTED = r"\1[redacted]"


def redact(text: str) -> str:
    """text with every URL token replaced by [redacted], plain or percent-encoded."""
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
