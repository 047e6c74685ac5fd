"""The source conformance kit: fixtures, and the checks every source must pass.

Third-party source packages use it in their own tests:

    from medshard.testing import CHECKS, build_fixtures, run_check

See docs/adding-a-source.md.
"""

from medshard.testing.fixture import Fixture, load_fixture
from medshard.testing.kit import (
    CHECKS,
    ConformanceError,
    KitBuild,
    PendingKit,
    build_fixtures,
    check_adversarial,
    check_sources,
    run_check,
    start_build_fixtures,
    write_fixtures,
)

__all__ = [
    "CHECKS", "ConformanceError", "Fixture", "KitBuild", "PendingKit", "build_fixtures",
    "check_adversarial", "check_sources", "load_fixture", "run_check", "start_build_fixtures",
    "write_fixtures",
]
