import io

from ci_env.cleanup.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_ci_log_lines_every_interval() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress(100, out, tty=False, interval=10, clock=clock)
    for _ in range(50):
        clock.now += 0.5
        progress.advance()
    lines = out.getvalue().splitlines()
    assert lines == ["cleanup: 20/100 2.0/s ETA 40s", "cleanup: 40/100 2.0/s ETA 30s"]
    assert "\r" not in out.getvalue()


def test_tty_bar() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress(4, out, tty=True, clock=clock)
    for _ in range(4):
        clock.now += 1
        progress.advance()
    progress.close()
    text = out.getvalue()
    assert text.startswith("\rcleanup [")
    assert "4/4" in text
    assert text.endswith("\n")


def test_nothing_to_do_prints_nothing() -> None:
    out = io.StringIO()
    Progress(0, out, tty=False).close()
    assert out.getvalue() == ""


def test_planning_counts_tags_resolved_of_a_growing_total() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress(0, out, tty=False, interval=10, label="planning", unit="tags", clock=clock)
    progress.grow(40)  # the first repository's tags are listed
    for _ in range(20):
        clock.now += 1
        progress.advance()
    progress.grow(60)  # another repository's
    for _ in range(20):
        clock.now += 1
        progress.advance()
    assert out.getvalue().splitlines() == [
        "planning: 10/40 tags 1.0/s ETA 30s",
        "planning: 20/40 tags 1.0/s ETA 20s",
        "planning: 30/100 tags 1.0/s ETA 1m10s",
        "planning: 40/100 tags 1.0/s ETA 1m00s",
    ]


def test_a_held_bar_counts_silently_until_released() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress(10, out, tty=True, clock=clock, held=True)
    for _ in range(5):
        clock.now += 1
        progress.advance()
    assert out.getvalue() == ""  # the planning bar has the line
    progress.release()
    clock.now += 1
    progress.advance()
    assert out.getvalue().startswith("\rcleanup [")
    assert "6/10" in out.getvalue()
