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
