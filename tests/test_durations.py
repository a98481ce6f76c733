from datetime import timedelta

import pytest

from ci_env import durations
from ci_env.errors import UsageError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("90m", timedelta(minutes=90)),
        ("36h", timedelta(hours=36)),
        ("14d", timedelta(days=14)),
        ("2w", timedelta(weeks=2)),
        ("0s", timedelta(0)),
        (" 5D ", timedelta(days=5)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert durations.parse(text) == expected


@pytest.mark.parametrize("text", ["", "30", "1h30m", "-2h", "30 days", "2y", "1.5h", "h"])
def test_bad_values_are_usage_errors_naming_the_option(text: str) -> None:
    with pytest.raises(UsageError) as error:
        durations.parse(text, what="--keep-newer-than")
    assert error.value.exit_code == 2
    assert "--keep-newer-than" in error.value.message


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(days=14), "2w"),
        (timedelta(hours=36), "36h"),
        (timedelta(0), "0s"),
        (timedelta(seconds=90), "90s"),
        (timedelta(minutes=90), "90m"),
        (timedelta(days=3), "3d"),
    ],
)
def test_render(value: timedelta, text: str) -> None:
    assert durations.render(value) == text
    assert durations.parse(text) == value


@pytest.mark.parametrize("text", ["99999999999w", "999999999d", "36501d", "5300w"])
def test_durations_beyond_100_years_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as error:
        durations.parse(text, what="--delete-older-than")
    assert "36500 days" in error.value.message


def test_100_years_is_still_a_duration() -> None:
    assert durations.parse("36500d") == timedelta(days=36_500)
