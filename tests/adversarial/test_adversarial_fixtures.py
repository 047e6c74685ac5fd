"""The adversarial fixture set: every built-in source's fixture, mutated as a hostile or
unlucky raw tree would be, builds without crashing and leaks nothing from outside its root.

The mutations live beside each fixture (`Fixture.adversarial`) and in
`medshard.testing.adversarial` (the generic ones every source gets); the kit's
`check_adversarial` applies them. One small build per source.
"""

from __future__ import annotations

import pytest

from medshard.sources import registry
from medshard.testing import check_adversarial

BUILTINS = sorted(registry.BUILTIN_SOURCES)


@pytest.mark.parametrize("slug", BUILTINS)
def test_mutated_fixture_builds_and_keeps_to_its_root(slug, tmp_path):
    check_adversarial(slug, tmp_path)


def test_the_kit_catches_a_source_that_follows_a_symlink_out_of_its_root(tmp_path, monkeypatch):
    from medshard.testing import ConformanceError

    monkeypatch.setattr(registry, "BUILTIN_SOURCES", {
        **registry.BUILTIN_SOURCES,
        "toy-follows-symlinks": "tests.conformance_toy:FollowsSymlinks"})
    registry._registry.cache_clear()
    try:
        with pytest.raises(ConformanceError, match=r"^toy-follows-symlinks: adversarial: r01"):
            check_adversarial("toy-follows-symlinks", tmp_path)
    finally:
        registry._registry.cache_clear()
