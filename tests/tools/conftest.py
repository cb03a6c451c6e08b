from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.tools import BaseTool

from tools import Shop, build_tools

JANE = "cus_jane"
OMAR = "cus_omar"


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    with Shop(tmp_path / "shop.sqlite") as opened:
        yield opened


@pytest.fixture
def tools(shop: Shop) -> dict[str, BaseTool]:
    return {t.name: t for t in build_tools(shop)}
