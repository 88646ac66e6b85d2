"""Progress lines of long commands: counts, rate and the time left."""
from __future__ import annotations

import io

from app.progress import Progress, duration


def test_durations_read_as_people_say_them():
    assert [duration(s) for s in (0, 4.4, 59.6, 61, 3599, 3600, 7260)] == [
        "0 s", "4 s", "1 min 00 s", "1 min 01 s", "59 min 59 s", "1 h 00 min", "2 h 01 min"]


def test_log_lines_say_how_long_is_left():
    out = io.StringIO()
    progress = Progress(100, "indexing shop", stream=out, unit="images")
    progress.start -= 30  # as if the first 10 images had taken 30 s
    progress.update(10)
    first = out.getvalue().splitlines()[0]
    assert first.startswith("indexing shop: 10/100 (10%), 0 images/s, about ")
    left = first.rsplit("about ", 1)[1]
    assert left.endswith(" left") and left.startswith(("4 min", "4 min 3"))  # 90 images at 3 s each: 270 s
    progress.update(90)
    assert out.getvalue().splitlines()[-1] == "indexing shop: 100/100 (100%), 3 images/s"  # nothing left to wait for
    progress.close()
    assert out.getvalue().splitlines()[-1].startswith("indexing shop: 100 images in ")


def test_no_estimate_before_there_is_anything_to_go_on():
    out = io.StringIO()
    progress = Progress(10, "x", stream=out)
    progress.update(1)  # a moment after starting: an estimate would be noise
    assert "left" not in out.getvalue() and progress.eta() is None
