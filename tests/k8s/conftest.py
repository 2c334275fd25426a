from __future__ import annotations

import pytest

from .chart import IDS, VALUE_SETS, rendered


@pytest.fixture(scope="module", params=VALUE_SETS, ids=IDS)
def docs(request):
    """The chart rendered with each CI value set (and the defaults)."""
    return rendered(request.param)
