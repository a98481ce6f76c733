"""The pure digest graph, driven by the planner against the in-memory backend."""

from datetime import UTC, datetime, timedelta

import pytest

from ci_env.cleanup import planner
from ci_env.cleanup.graph import DigestGraph
from ci_env.cleanup.plan import Action, PlanItem, RepoPlan
from ci_env.cleanup.rules import Rules, Untagged
from ci_env.inuse.base import InUse, RepoUse
from ci_env.oci import DOCKER_MANIFEST
from ci_env.registries.base import Image
from tests.cleanup.fakes import FakeBackend, TagsOnlyBackend, digest

NOW = datetime(2025, 6, 1, tzinfo=UTC)
OLD = NOW - timedelta(days=60)
RULES = Rules(delete_tags=("pr-.*",), untagged=Untagged.DELETE)


def plan(backend: FakeBackend, rules: Rules = RULES, **kw: bool) -> RepoPlan:
    settings = planner.Settings(rules, NOW, None, kw.get("keep_orphans", False), parallel=4)
    return planner.plan_repository(backend, "app", settings)


def by(result: RepoPlan) -> dict[str, PlanItem]:
    return {item.tag or item.digest: item for item in result.items}


@pytest.fixture
def fake() -> FakeBackend:
    backend = FakeBackend()
    backend.times = {}
    return backend


def test_shared_digest_is_untagged_not_deleted(fake: FakeBackend) -> None:
    shared = fake.add("app", digest("s"), ["v1", "pr-1"], time=OLD)
    fake.add("app", digest("o"), ["pr-2"], time=OLD)
    items = by(plan(fake))
    assert items["pr-1"].action is Action.UNTAG
    assert "still needed by kept tag v1" in items["pr-1"].reason
    assert items["pr-2"].action is Action.DELETE
    ops = plan(fake).operations()
    assert {(op.kind.value, op.tag) for op in ops} == {("untag", "pr-1"), ("delete", None)}
    assert shared not in {op.digest for op in ops if op.kind.value == "delete"}


def test_children_of_kept_index_survive_untagged_delete(fake: FakeBackend) -> None:
    a, b = fake.add("app", digest("amd"), time=OLD), fake.add("app", digest("arm"), time=OLD)
    inner = fake.add("app", digest("inner"), children=[b], time=OLD)  # nested index
    fake.add("app", digest("idx"), ["v1"], children=[a, inner], time=OLD)
    stray = fake.add("app", digest("stray"), time=OLD)
    items = by(plan(fake))
    for child in (a, b, inner):
        assert items[child].action is Action.KEEP
        assert items[child].reason == "kept: needed by kept tag v1"
    assert items[stray].action is Action.DELETE


def test_index_to_delete_sharing_child_with_kept_index(fake: FakeBackend) -> None:
    common = fake.add("app", digest("common"), time=OLD)
    fake.add("app", digest("kept-idx"), ["v1"], children=[common], time=OLD)
    gone = fake.add("app", digest("pr-idx"), ["pr-1"], children=[common], time=OLD)
    items = by(plan(fake))
    assert items["pr-1"].action is Action.DELETE
    assert items["pr-1"].digest == gone
    assert items[common].action is Action.KEEP


def test_children_of_deleted_index_go_unless_needed(fake: FakeBackend) -> None:
    common, own = (
        fake.add("app", digest("common"), time=OLD),
        fake.add("app", digest("own"), time=OLD),
    )
    deep = fake.add("app", digest("deep"), time=OLD)
    inner = fake.add("app", digest("inner"), children=[deep], time=OLD)
    fake.add("app", digest("kept-idx"), ["v1"], children=[common], time=OLD)
    fake.add("app", digest("pr-idx"), ["pr-1"], children=[common, own, inner], time=OLD)
    stray = fake.add("app", digest("stray"), time=OLD)
    result = plan(fake, RULES.replace(untagged=Untagged.KEEP))
    items = by(result)
    assert items[common].action is Action.KEEP
    for part in (own, inner, deep):
        assert items[part].action is Action.DELETE, part
        assert items[part].reason.startswith("deleted: part of deleted")
    assert items[stray].action is Action.KEEP  # an untagged image of its own: untagged: keep
    first, second = result.waves()
    assert [op.digest for op in first] == [digest("pr-idx")]
    assert {op.digest for op in second} == {own, inner, deep}


def test_referrers_follow_their_subject(fake: FakeBackend) -> None:
    kept = fake.add("app", digest("kept"), ["v1"], time=OLD)
    dead = fake.add("app", digest("dead"), ["pr-1"], time=OLD)
    sig_kept = fake.add("app", digest("sig-k"), [kept.replace(":", "-") + ".sig"], time=OLD)
    sig_dead = fake.add("app", digest("sig-d"), [dead.replace(":", "-") + ".sig"], time=OLD)
    api_kept = fake.add("app", digest("sbom-k"), subject=kept, time=OLD)
    api_dead = fake.add("app", digest("sbom-d"), subject=dead, time=OLD)
    rules = RULES.replace(delete_tags=("pr-.*", "sha256-.*"))
    items = by(plan(fake, rules))
    sig_k, sig_d = (kept.replace(":", "-") + ".sig", dead.replace(":", "-") + ".sig")
    assert items[sig_k].action is Action.KEEP
    assert items[sig_k].digest == sig_kept
    assert "referrer of kept tag v1" in items[sig_k].reason
    assert items[sig_d].action is Action.DELETE
    assert items[sig_d].digest == sig_dead
    assert items[api_kept].action is Action.KEEP
    assert items[api_dead].action is Action.DELETE
    keep_untagged = by(plan(fake, rules.replace(untagged=Untagged.KEEP)))
    assert keep_untagged[api_dead].action is Action.DELETE
    assert keep_untagged[api_dead].reason.startswith("deleted: referrer of deleted")
    assert keep_untagged[api_kept].action is Action.KEEP
    orphans_kept = by(plan(fake, rules, keep_orphans=True))
    assert orphans_kept[sig_d].action is Action.KEEP
    assert orphans_kept[api_dead].action is Action.KEEP


def test_unreadable_kept_manifest_fails_closed_naming_the_tag(fake: FakeBackend) -> None:
    broken = fake.add("app", digest("idx"), ["v1"], children=[digest("x")], time=OLD)
    fake.add("app", digest("o"), ["pr-1"], time=OLD)
    fake.unreadable.add(broken)
    result = plan(fake)
    assert result.error is not None
    assert "kept tag v1" in result.error
    assert result.operations() == []


def test_plain_manifests_are_never_fetched() -> None:
    fake = TagsOnlyBackend()
    for index in range(20):
        fake.add("app", digest(f"k{index}"), [f"keep-{index}"], time=OLD)
        fake.add("app", digest(f"d{index}"), [f"pr-{index}"], time=OLD)
    result = plan(fake, RULES.replace(untagged=Untagged.KEEP))
    assert len(result.operations()) == 20
    assert fake.calls["manifest"] == 0
    assert fake.calls["referrers"] == 0


def test_unknown_media_type_is_read() -> None:
    image = Image(digest("k"), ("v1",))
    graph = DigestGraph([image], [PlanItem(image.digest, "v1", Action.KEEP, "kept")])
    assert graph.wants().manifests == {image.digest}
    plain = Image(digest("k"), ("v1",), media_type=DOCKER_MANIFEST)
    graph = DigestGraph([plain], [PlanItem(plain.digest, "v1", Action.KEEP, "kept")])
    assert not graph.wants()


def test_times_are_read_only_for_undecided_images(fake: FakeBackend) -> None:
    fake.add("app", digest("k"), ["keep"], time=OLD)
    fake.add("app", digest("d"), ["pr-1"], time=OLD)
    result = plan(fake, RULES.replace(untagged=Untagged.KEEP))
    assert fake.calls["time"] == 1
    assert by(result)["pr-1"].action is Action.DELETE
    fake.listed_times = True
    fake.calls.clear()
    plan(fake, RULES.replace(untagged=Untagged.KEEP))
    assert fake.calls["time"] == 0


def broken_repo(fake: FakeBackend) -> tuple[str, str, str]:
    """v1 is an index whose second child answers 404 MANIFEST_UNKNOWN; pr-1 can go."""
    present = fake.add("app", digest("amd"), time=OLD)
    gone = digest("arm")
    fake.missing.add(gone)
    index = fake.add("app", digest("idx"), ["v1"], children=[present, gone], time=OLD)
    fake.add("app", digest("o"), ["pr-1"], time=OLD)
    return index, present, gone


def test_a_broken_kept_index_fails_closed_by_default(fake: FakeBackend) -> None:
    broken_repo(fake)
    result = plan(fake)
    assert result.error is not None
    assert "kept tag v1" in result.error
    assert "--on-broken skip" in result.error
    assert result.operations() == []


def test_on_broken_skip_leaves_the_broken_tag_alone_and_cleans_the_rest(
    fake: FakeBackend,
) -> None:
    index, present, gone = broken_repo(fake)
    settings = planner.Settings(RULES, NOW, None, parallel=4, skip_broken=True)
    result = planner.plan_repository(fake, "app", settings)
    assert result.error is None
    assert result.broken == (f"v1: needs {gone}, which answers 404 MANIFEST_UNKNOWN",)
    items = by(result)
    assert items["v1"].action is Action.KEEP
    assert items["v1"].reason.startswith("kept: broken")
    assert items[present].action is Action.KEEP  # what the broken tag still references
    assert items["pr-1"].action is Action.DELETE
    assert {op.digest for op in result.operations()} == {digest("o")}


def test_on_broken_skip_still_fails_closed_on_errors_that_are_not_a_definite_404(
    fake: FakeBackend,
) -> None:
    index, present, gone = broken_repo(fake)
    fake.missing.discard(gone)
    fake.unreadable.add(gone)  # a 500: perhaps passing, perhaps not
    settings = planner.Settings(RULES, NOW, None, parallel=4, skip_broken=True)
    assert planner.plan_repository(fake, "app", settings).error is not None
    fake.unreadable.discard(gone)  # a 404 without MANIFEST_UNKNOWN (a proxy's, say)
    assert planner.plan_repository(fake, "app", settings).error is not None


def test_a_digest_in_use_keeps_its_graph_even_unlisted() -> None:
    """A pod runs a platform manifest of an index being deleted, on a registry that lists
    tagged manifests only: the platform manifest and what it needs stay."""
    fake = TagsOnlyBackend()
    running, other = fake.add("app", digest("arm"), time=OLD), fake.add("app", digest("amd"))
    fake.add("app", digest("pr-idx"), ["pr-1"], children=[running, other], time=OLD)
    sig = fake.add("app", digest("sig"), [running.replace(":", "-") + ".sig"], time=OLD)
    use = RepoUse(digests={running: "in use by pod prod/x (context a)"})
    rules = RULES.replace(delete_tags=("pr-.*", "sha256-.*"))
    settings = planner.Settings(rules, NOW, None, parallel=1, in_use=InUse({"fake.test/app": use}))
    items = by(planner.plan_repository(fake, "app", settings))
    assert items["pr-1"].action is Action.DELETE
    assert items[other].action is Action.DELETE
    assert running not in items  # never planned: not deleted
    sig_tag = running.replace(":", "-") + ".sig"
    assert items[sig_tag].digest == sig
    assert items[sig_tag].action is Action.KEEP
    assert items[sig_tag].reason == "kept: referrer of an image in use by pod prod/x (context a)"


class CascadingBackend(TagsOnlyBackend):
    delete_cascades = True  # like Harbor: an index delete takes its unreferenced children


def test_an_index_holding_a_digest_in_use_is_untagged_where_deletes_cascade() -> None:
    """Harbor deletes an index's children with it: the index a pod's platform manifest is
    part of must be untagged, not deleted, or the running manifest goes too."""
    fake = CascadingBackend()
    running, other = fake.add("app", digest("arm"), time=OLD), fake.add("app", digest("amd"))
    index = fake.add("app", digest("pr-idx"), ["pr-1"], children=[running, other], time=OLD)
    use = RepoUse(digests={running: "in use by pod prod/x (context a)"})
    settings = planner.Settings(RULES, NOW, None, parallel=1, in_use=InUse({"fake.test/app": use}))
    result = planner.plan_repository(fake, "app", settings)
    items = by(result)
    assert items["pr-1"].action is Action.UNTAG
    assert "still needed by an image in use by pod prod/x" in items["pr-1"].reason
    assert index not in {op.digest for op in result.operations() if op.kind.value == "delete"}
    assert all(op.kind.value == "untag" for op in result.operations())
