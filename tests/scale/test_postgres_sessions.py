"""Session-level promises a multi-process Postgres deployment relies on.

Both failed before their fixes: Lease.release now unlocks explicitly, and a schema is added to the
URL's own options instead of replacing them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from agent_kit.store import Store
from tests._pg import PG_URL, drop_schema

pytestmark = pytest.mark.postgres


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"ak_sess_{uuid.uuid4().hex[:10]}"
    yield name
    drop_schema(name)



def test_a_released_lease_is_free_as_soon_as_release_returns(schema: str) -> None:
    still_held = 0
    with Store.open(db_url=PG_URL, schema=schema) as store, psycopg.connect(PG_URL, autocommit=True) as other:
        key = store._db.lock_key("lease\x1ft1")  # type: ignore[attr-defined]
        for _ in range(200):
            store.leases.acquire("t1").release()
            if other.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
                other.execute("SELECT pg_advisory_unlock(%s)", (key,))
                continue
            still_held += 1
            deadline = time.monotonic() + 10  # let the old session end before the next round
            while not other.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
                assert time.monotonic() < deadline, "the lease was never freed"
            other.execute("SELECT pg_advisory_unlock(%s)", (key,))
    assert still_held == 0, f"another process found the lease still held just after release() in {still_held}/200"



def test_the_urls_session_options_survive_a_schema(schema: str) -> None:
    url = f"{PG_URL}?options=-cstatement_timeout%3D4321"
    with Store.open(db_url=url, schema=schema) as store:
        conn = store._db.connection()  # type: ignore[attr-defined]
        assert conn.execute("SHOW search_path").fetchone()[0] == schema
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "4321ms"
        saver = store.checkpointer()
        assert saver.conn.execute("SHOW statement_timeout").fetchone()["statement_timeout"] == "4321ms"
