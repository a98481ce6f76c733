"""werf.yaml's cleanup section read as werf reads it (pkg/config/raw_meta_cleanup.go)."""

from datetime import timedelta

import pytest

from ci_env.cleanup import werf_config
from ci_env.cleanup.keep_policies import DEFAULT_POLICIES, KeepPolicy, Limit, RefKind
from ci_env.errors import UsageError

META = "project: app\nconfigVersion: 1\n"
IMAGES = "---\nimage: app\nfrom: {{ .Values.base }}\n"


def test_no_cleanup_section_means_werfs_defaults() -> None:
    for text in (META + IMAGES, META + "cleanup:\n" + IMAGES):
        got = werf_config.parse(text)
        assert got.git is not None
        assert got.git.policies == DEFAULT_POLICIES
        assert got.newer_than == timedelta(hours=2)


def test_keep_policies_and_hours() -> None:
    text = META + (
        "cleanup:\n"
        "  keepImagesBuiltWithinLastNHours: 5\n"
        "  disableKubernetesBasedPolicy: true\n"
        "  keepPolicies:\n"
        "  - references: {tag: /^v.*/, limit: {last: 3}}\n"
    )
    got = werf_config.parse(IMAGES.removeprefix("---\n") + "---\n" + text)  # meta need not lead
    assert got.git is not None
    assert got.git.policies == (KeepPolicy(RefKind.TAG, "/^v.*/", Limit(last=3)),)
    assert got.newer_than == timedelta(hours=5)


def test_disable_switches() -> None:
    text = META + "cleanup:\n  disableGitHistoryBasedPolicy: true\n"
    text += "  disableBuiltWithinLastNHoursPolicy: true\n"
    got = werf_config.parse(text)
    assert got.git is None
    assert got.newer_than == timedelta(0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            META + "cleanup:\n  disable: true\n",
            "line 4: cleanup.disable: werf's cleanup is disabled",
        ),
        (META + "cleanup:\n  keepPolicy: []\n", "line 4: cleanup.keepPolicy: unknown key"),
        (META + "cleanup:\n  keepPolicies: [{}]\n", "cleanup.keepPolicies[0].references: missing"),
        (
            META + "cleanup:\n  keepImagesBuiltWithinLastNHours: -1\n",
            "line 4: cleanup.keepImagesBuiltWithinLastNHours: expected a whole number",
        ),
        ("project: {{ .Env.NAME }}\nconfigVersion: 1\n", "the meta document uses Go templates"),
        ("image: app\n", "no werf meta document"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as error:
        werf_config.parse(text)
    assert message in error.value.message, error.value.message
    assert error.value.message.startswith("werf.yaml")
