"""Names as people type them: any case, and "did you mean" for a near miss."""

from __future__ import annotations

import pytest

from socialguard.core.catalog import CATEGORIES
from socialguard.core.names import (
    UnknownNameError,
    resolve_category,
    resolve_id,
    resolve_service,
)
from tests.conftest import make_policy

CATALOG = make_policy().catalog


@pytest.mark.parametrize(
    ("typed", "service"),
    [("facebook", "facebook"), ("Facebook", "facebook"), ("FACEBOOK", "facebook"),
     ("YouTube", "youtube"), ("linked in", "linkedin")],
)  # fmt: skip
def test_services_by_id_or_name_in_any_case(typed: str, service: str) -> None:
    assert resolve_service(typed, CATALOG) == service


def test_a_near_miss_is_suggested() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'Facebook'"):
        resolve_service("Facebok", CATALOG)
    with pytest.raises(UnknownNameError) as caught:
        resolve_service("myspace", CATALOG)
    assert "did you mean" not in str(caught.value)
    assert "socialguard catalog list" in str(caught.value)


def test_categories_in_any_case() -> None:
    assert resolve_category("Social networking", CATEGORIES) == "social-networking"


def test_exemption_ids_in_any_case() -> None:
    ids = ["EX-2026-001", "EX-2026-002"]
    assert resolve_id("ex-2026-002", ids) == "EX-2026-002"
    with pytest.raises(UnknownNameError, match="did you mean EX-2026-001"):
        resolve_id("EX-2026-01", ids)
    with pytest.raises(UnknownNameError, match="ids in the file: EX-2026-001, EX-2026-002"):
        resolve_id("EX-2099-999", ids)
