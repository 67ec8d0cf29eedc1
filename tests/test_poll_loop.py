"""`poll --loop` as operators run it: a process of its own, cycle after cycle."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.conftest import x_config
from tests.helpers import follow

ROOT = Path(__file__).resolve().parent.parent


def test_every_cycle_polls_the_sources_due_from_the_first_one_on(tmp_path, db_url, fake_x, runner):
    """Each source's next check counts from the cycle's start, and the next cycle starts one interval after that
    same moment: the first cycle's slower lease write once made the second cycle start before anything was due."""
    fake_x.add_user("crew")
    follow(runner, "crew")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDAPP_")}
    env.update({k: str(v) for k, v in x_config(fake_x).items()},
               FEEDAPP_INSTANCE_PATH=str(tmp_path / "inst"), FEEDAPP_DATABASE_URL=db_url,
               FEEDAPP_POLL_INTERVAL="2", FEEDAPP_STREAM="off", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "feedapp", "poll", "--loop"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
    reader.start()
    totals, seen = [], []
    try:
        while len(totals) < 4:
            line = lines.get(timeout=60)  # a bound, not a pause: returns as soon as a line is printed
            seen.append(line)
            if line.startswith("total:"):
                totals.append(line.split(",")[0])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        reader.join(timeout=60)
        proc.stdout.close()
    assert totals == ["total: 1 sources"] * 4, "".join(seen)
