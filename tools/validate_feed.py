"""Check RSS/Atom files with the W3C Feed Validator, offline: `python tools/validate_feed.py FILE[=URL]...`.

The validator (https://github.com/w3c/feedvalidator, MIT licence, see
tools/vendor/feedvalidator/LICENSE) is vendored unchanged under tools/vendor: only its
package, without the web front end. It needs html5lib (requirements-dev.txt). It sets a
process-wide socket timeout when imported, so tests run this script in a process of its own.

URL is where the feed is served (its rel="self" link is checked against it). Prints one
line per problem the online validator would show ("AA" level: errors and warnings; its
"info" notes are left out, as feedvalidator.org leaves them out of its verdict), or
nothing; exits 1 when there is any. `--json` prints {FILE: [{"level", "type", "message",
"line"}...]} instead (tests validate many feeds in one process this way).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "vendor"))

import feedvalidator  # noqa: E402
from feedvalidator import compatibility  # noqa: E402
from feedvalidator.formatter.text_plain import Formatter  # noqa: E402
from feedvalidator.logging import Error, Warning  # noqa: E402


def problems(data: bytes, base: str = "") -> list[dict]:
    """The errors and warnings the W3C validator finds in one feed document."""
    try:
        # validateString takes the bytes as served; base is the feed's own URL (its rel=self check).
        events = feedvalidator.validateString(data, firstOccurrenceOnly=1, base=base)["loggedEvents"]
    except feedvalidator.logging.ValidationFailure as failure:
        events = [failure.event]
    events = compatibility.AA(events)  # what feedvalidator.org reports
    lines = Formatter(events)
    found = []
    for event, line in zip(events, lines):
        level = "error" if isinstance(event, Error) else "warning" if isinstance(event, Warning) else "info"
        if level == "info":
            continue
        found.append({"level": level, "type": type(event).__name__, "message": line,
                      "line": event.params.get("line")})
    return found


def main(argv: list[str]) -> int:
    as_json = "--json" in argv
    args = [a for a in argv if a != "--json"]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    report = {}
    for arg in args:
        path, _, url = arg.partition("=")
        report[path] = problems(Path(path).read_bytes(), url)
    if as_json:
        print(json.dumps(report))
    else:
        for path, found in report.items():
            for problem in found:
                print(f"{path}: {problem['level']}: {problem['message']}")
    return 1 if any(report.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
