"""Characters that HTML, XML and log readers must never see, handled in one place.

Stdlib only: the X layer cleans every text once at normalization, the renderers
clean again defensively (posts stored before), and logging escapes what is left.

- scrub(): drops what HTML and XML forbid, turning separators into a space or a newline.
- clean(): scrub() plus terminated bidi embeddings, overrides and isolates; for stored text.
- Cleaner: clean() over a text given in pieces, so callers know where each piece lands.
- install_log_sanitizer() / LogSanitizer: one log record, one line, no control characters.
"""

from __future__ import annotations

import logging
import re
import traceback

# Forbidden, from three rules that all apply to what feedapp writes:
# XML 1.0 §2.2 Char excludes C0 controls but tab/LF/CR, surrogates and U+FFFE/U+FFFF;
# HTML (WHATWG "Preprocessing the input stream") makes controls other than ASCII whitespace
# (U+007F–U+009F included) and noncharacters (U+FDD0–U+FDEF, U+nFFFE, U+nFFFF) parse errors;
# a lone surrogate has no UTF-8 encoding at all. U+2028/U+2029 are allowed by both but end
# lines in JavaScript and many readers, so they are listed here to become plain newlines.
# The class holds every forbidden BMP character and, as one range, everything from U+1FFFE up:
# the 32 astral noncharacters listed one by one made each search about 7x slower (98 against
# 14 µs on a 2 KB page fragment); of that range only they are forbidden (see _forbidden), and
# emoji (below U+1FFFE) never reach the slower path.
_FORBIDDEN_CLASS = ("\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
                    "\U0001fffe-\U0010ffff")
_FORBIDDEN = re.compile(f"[{_FORBIDDEN_CLASS}]")
# Separators become a space or a newline so the words on both sides stay apart: VT, FF and the
# information separators FS/GS/RS/US (Unicode bidi classes S/B, Python's str.isspace) a space;
# NEL, LINE and PARAGRAPH SEPARATOR a line break (UAX #14 makes all three mandatory breaks).
_REPLACEMENTS = {"\x0b": " ", "\x0c": " ", "\x1c": " ", "\x1d": " ", "\x1e": " ", "\x1f": " ",
                 "\x85": "\n", "\u2028": "\n", "\u2029": "\n"}
_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")

# UAX #9 explicit formatting characters. Embeddings/overrides: LRE RLE LRO RLO, closed by PDF;
# isolates: LRI RLI FSI, closed by PDI.
_EMBEDDINGS, PDF = "\u202a\u202b\u202d\u202e", "\u202c"
_ISOLATES, PDI = "\u2066\u2067\u2068", "\u2069"
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
# UAX #9 P1/X8: a paragraph separator ends every embedding and isolate; LF and CR are the ones
# left after scrub(). Each line is therefore balanced on its own, and a first line cut out as
# a feed title stays balanced too.
_BIDI_OR_BREAK = re.compile("[\u202a-\u202e\u2066-\u2069\n\r]")
_MAX_DEPTH = 125  # UAX #9 BD2 max_depth: deeper initiators are ignored by the algorithm anyway


def _join_pair(match: re.Match) -> str:
    high, low = (ord(c) for c in match[0])
    return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))


def _forbidden(char: str) -> bool:
    """Whether a character _FORBIDDEN matched really is forbidden (astral: only U+nFFFE/U+nFFFF)."""
    return ord(char) <= 0xFFFF or ord(char) & 0xFFFE == 0xFFFE


def _replace(match: re.Match) -> str:
    char = match[0]
    return _REPLACEMENTS.get(char, "") if _forbidden(char) else char


def scrub(text: str) -> str:
    """text without the characters HTML and XML forbid; separators become a space or newline."""
    if not _FORBIDDEN.search(text):
        return text
    # A surrogate pair in a str (decoded as UTF-16 halves) is one real character, not two lone ones.
    text = _SURROGATE_PAIR.sub(_join_pair, text)
    return _FORBIDDEN.sub(_replace, text)


def scrub_value(value):
    """scrub() for any str (a Markup stays Markup); other values as they are. Jinja's finalize."""
    if isinstance(value, str) and _FORBIDDEN.search(value):
        cleaned = scrub(value)
        return value if cleaned == value else type(value)(cleaned)
    return value


class Cleaner:
    """clean() over a text given piece by piece: feed() each piece in order, then close().

    What feed() returns for a piece is exactly where that piece lands in the result, so a
    caller building link spans can count offsets as it goes.
    """

    def __init__(self) -> None:
        self._open: list[str] = []  # PDF or PDI for each initiator still open, innermost last
        self._overflow_isolates = self._overflow_embeddings = 0

    def feed(self, piece: str) -> str:
        """The cleaned piece: scrubbed, stray closers dropped, open ones closed at each line end."""
        piece = scrub(piece)
        if not (self._open or self._overflow_isolates or self._overflow_embeddings or _BIDI.search(piece)):
            return piece
        out: list[str] = []
        pos = 0
        for match in _BIDI_OR_BREAK.finditer(piece):
            out.append(piece[pos:match.start()])
            out.append(self._step(match[0]))
            pos = match.end()
        out.append(piece[pos:])
        return "".join(out)

    def close(self) -> str:
        """Closers for every embedding, override and isolate still open at the end of the text."""
        closers = "".join(reversed(self._open))
        self._open.clear()
        self._overflow_isolates = self._overflow_embeddings = 0
        return closers

    def _step(self, char: str) -> str:
        """What one bidi control or line break becomes (UAX #9 X2–X8, counting like the algorithm)."""
        overflow = self._overflow_isolates or self._overflow_embeddings
        if char in "\n\r":
            return self.close() + char
        if char in _EMBEDDINGS or char in _ISOLATES:
            if len(self._open) < _MAX_DEPTH and not overflow:
                self._open.append(PDF if char in _EMBEDDINGS else PDI)
                return char
            if char in _ISOLATES:
                self._overflow_isolates += 1
            elif not self._overflow_isolates:
                self._overflow_embeddings += 1
            return ""  # beyond max_depth: the algorithm ignores it, so dropping changes nothing
        if char == PDF:
            if self._overflow_isolates:
                return ""
            if self._overflow_embeddings:
                self._overflow_embeddings -= 1
                return ""
            if self._open and self._open[-1] == PDF:
                return self._open.pop()
            return ""  # stray: nothing to close inside the current isolate
        # PDI: closes its isolate and every embedding opened inside it (X6a).
        if self._overflow_isolates:
            self._overflow_isolates -= 1
            return ""
        if PDI not in self._open:
            return ""  # stray
        self._overflow_embeddings = 0
        closers = []
        while self._open[-1] == PDF:
            closers.append(self._open.pop())
        self._open.pop()
        return "".join(closers) + PDI


def clean(text: str) -> str:
    """Stored-text form: scrub() plus every bidi embedding, override and isolate ended by its line."""
    cleaner = Cleaner()
    return cleaner.feed(text) + cleaner.close()


# --- log records -----------------------------------------------------------------------

# In a log line even tab-free whitespace and format characters can forge or hide text:
# line breaks start a fake record, bidi controls reorder a terminal line, ESC starts an
# ANSI sequence. They are shown as escapes, the way werkzeug and CPython's http.server do.
_LOG_UNSAFE = re.compile(f"[{_FORBIDDEN_CLASS}\n\r\u202a-\u202e\u2066-\u2069]")
# werkzeug's development server colours its own request lines (after escaping the request).
_SGR = re.compile(r"\x1b\[[0-9;]*m")
_LOG_UNSAFE_OR_SGR = re.compile(f"{_SGR.pattern}|{_LOG_UNSAFE.pattern}")


def _escape(match: re.Match) -> str:
    char = match[0]
    if not _forbidden(char):
        return char  # an astral character that is no noncharacter
    if char == "\n":
        return "\\n"
    if char == "\r":
        return "\\r"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _escape_keeping_sgr(match: re.Match) -> str:
    return match[0] if len(match[0]) > 1 else _escape(match)


def escape_log_text(text: str, keep_sgr: bool = False) -> str:
    """text as one safe log line: line breaks, controls, noncharacters and bidi controls escaped."""
    if keep_sgr:
        return _LOG_UNSAFE_OR_SGR.sub(_escape_keeping_sgr, text)
    return _LOG_UNSAFE.sub(_escape, text)


def _escape_traceback(exc_info, keep_sgr: bool) -> str:
    """The traceback logging would print, each exception's message kept to its own line(s)."""
    text = "".join(traceback.format_exception(*exc_info))
    exc, seen = exc_info[1], set()
    while exc is not None and id(exc) not in seen:  # the chain traceback prints: causes, contexts
        seen.add(id(exc))
        message = "".join(traceback.format_exception_only(type(exc), exc))
        text = text.replace(message, escape_log_text(message.rstrip("\n"), keep_sgr) + "\n")
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    # Frames and code lines keep their line structure; anything else unsafe is escaped.
    return "\n".join(escape_log_text(line, keep_sgr) for line in text.rstrip("\n").split("\n"))


def sanitize_record(record: logging.LogRecord, keep_sgr: bool = False) -> None:
    """Make record's message one safe line and its traceback safe (in place)."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format is logging's to report, at emit time
        return
    safe = escape_log_text(message, keep_sgr)
    if safe != message:
        record.msg, record.args = safe, None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        # logging.Formatter.format uses exc_text when set, instead of formatting exc_info again.
        record.exc_text = _escape_traceback(record.exc_info, keep_sgr)


class LogSanitizer(logging.Filter):
    """A logging filter: each record's message one line, with no control or bidi characters."""

    def __init__(self, keep_sgr: bool = False) -> None:
        super().__init__()
        self.keep_sgr = keep_sgr

    def filter(self, record: logging.LogRecord) -> bool:
        """Sanitize record in place; never drops it."""
        sanitize_record(record, self.keep_sgr)
        return True


def install_log_sanitizer(*names: str) -> None:
    """Sanitize every record of these loggers and their children (e.g. "feedapp" covers feedapp.*).

    A filter on a logger does not see its children's records (logging docs, "Filter
    Objects"), so the sanitizer wraps the record factory once per process: it then
    holds for loggers created later and whatever handlers are configured.
    """
    current = logging.getLogRecordFactory()
    wanted = set(getattr(current, "feedapp_sanitized", ())) | set(names)
    base = getattr(current, "feedapp_base", current)

    def factory(*args, **kwargs):
        record = base(*args, **kwargs)
        name = record.name
        if any(name == w or name.startswith(w + ".") for w in wanted):
            sanitize_record(record, keep_sgr=name.split(".", 1)[0] == "werkzeug")
        return record

    factory.feedapp_sanitized = frozenset(wanted)
    factory.feedapp_base = base
    logging.setLogRecordFactory(factory)
