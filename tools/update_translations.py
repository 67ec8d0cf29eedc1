"""Extract the interface strings and refresh translations/fr from tools/fr.py.

    .venv/bin/python tools/update_translations.py

Runs `pybabel extract` (messages.pot), then writes translations/fr/LC_MESSAGES/messages.po
with every string translated from tools/fr.py. Compile with `pybabel compile -d translations`
(`make setup` and `make test` do).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from fr import FR  # noqa: E402

POT = ROOT / "translations" / "messages.pot"
PO = ROOT / "translations" / "fr" / "LC_MESSAGES" / "messages.po"


def main() -> None:
    POT.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-k", "_l",
                    "-k", "N_", "-k", "lazy_gettext", "--no-location", "--sort-output", "--project", "feedapp", "-o", str(POT), "."],
                   cwd=ROOT, check=True)
    with POT.open("rb") as fh:
        catalog = read_po(fh, locale="fr")
    catalog.fuzzy = False  # the header: the catalogue is complete, compile it
    catalog.project, catalog.version = "feedapp", "1"
    catalog.last_translator = catalog.language_team = "feedapp maintainers"
    missing = []
    for message in catalog:
        if message.id:
            if message.id in FR:
                message.string = FR[message.id]
            else:
                missing.append(message.id)
    PO.parent.mkdir(parents=True, exist_ok=True)
    with PO.open("wb") as fh:
        write_po(fh, catalog, omit_header=False, width=120)
    print(f"wrote {PO.relative_to(ROOT)}: {len(catalog) - len(missing)} translated, {len(missing)} missing")
    for msgid in missing:
        print(f"  missing: {msgid!r}")
    if missing:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
