"""PostgreSQL's token lookup (`PgTokens`): the tokens asked for together are looked up by
one query, and each caller gets its own answer, a revoked, expired or unknown token
refused among valid ones, with revocation seen by the very next lookup."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import update

from service.adapters import pg_claims
from service.commands.admin import mint_token, revoke_token
from service.domain.actors import SYSTEM, Role
from service.executor import Executor
from service.persistence import tables
from service.settings import Settings
from service.tokens import DatabaseTokens
from tests.support import World, missing, postgres_url, scratch_database


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """PostgreSQL only (this replaces the every-backend database of conftest.py)."""
    if postgres_url() is None:
        missing("needs PostgreSQL: set DATABASE_URL")
    with scratch_database("postgresql", tmp_path_factory.mktemp("pg")) as url:
        yield url


def _mint(executor: Executor, world: World, role: str, city: str, **kw: Any) -> tuple[int, str]:
    command = functools.partial(mint_token, **kw)
    (token, secret), _ = executor.run_sync(
        SYSTEM, command, Role(role), world.city_ids[city], f"{role}-{city}"
    )
    return int(token.id), secret


def test_tokens_asked_together_are_looked_up_once_each_caller_its_own(
    executor: Executor, world: World, settings: Settings
) -> None:
    thika_id, thika = _mint(executor, world, "responder", "thika")
    nairobi_id, nairobi = _mint(executor, world, "manager", "nairobi", scopes=["claims"])
    revoked_id, revoked = _mint(executor, world, "responder", "machakos")
    expired_id, expired = _mint(executor, world, "observer", "mombasa")
    executor.run_sync(SYSTEM, revoke_token, revoked_id)
    with executor.db.engine.begin() as conn:
        conn.execute(
            update(tables.ApiToken)
            .where(tables.ApiToken.id == expired_id)  # type: ignore[arg-type]
            .values(expires_at=executor.clock() - timedelta(seconds=1))
        )

    async def scenario() -> tuple[list[Any], int, Any]:
        pool = await pg_claims.open_pool(settings)
        general = DatabaseTokens(executor.db, executor.clock)
        tokens = pg_claims.PgTokens(pool, general, executor.clock)
        queries = 0
        look_up = tokens._look_up

        async def counted(asked: Any) -> None:
            nonlocal queries
            queries += 1
            await look_up(asked)

        tokens._look_up = counted  # type: ignore[method-assign]
        try:
            secrets = [thika, nairobi, thika, revoked, "unknown-secret", expired, nairobi]
            found = await asyncio.gather(*(tokens.actor_for_secret(s) for s in secrets))
            together = queries
            # Revoked now: the very next lookup refuses it.
            executor.run_sync(SYSTEM, revoke_token, thika_id)
            after = await tokens.actor_for_secret(thika)
            return found, together, after
        finally:
            await pool.close()

    found, queries, after = asyncio.run(scenario())
    assert queries == 1
    ids = [a.token_id if a is not None else None for a in found]
    assert ids == [thika_id, nairobi_id, thika_id, None, None, None, nairobi_id]
    assert found[0] is not None and found[0].role is Role.RESPONDER
    assert found[0].city_id == world.city_ids["thika"] and found[0].scopes is None
    assert found[1] is not None and found[1].scopes == frozenset({"claims"})
    assert after is None


def test_a_failed_lookup_sends_each_caller_to_the_general_lookup(
    executor: Executor, world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    thika_id, thika = _mint(executor, world, "responder", "thika")
    monkeypatch.setattr(pg_claims, "_ACTORS_OF_HASHES", "SELECT no_such_column FROM api_tokens")

    async def scenario() -> list[Any]:
        pool = await pg_claims.open_pool(settings)
        general = DatabaseTokens(executor.db, executor.clock)
        tokens = pg_claims.PgTokens(pool, general, executor.clock)
        try:
            return await asyncio.gather(
                tokens.actor_for_secret(thika), tokens.actor_for_secret("unknown-secret")
            )
        finally:
            await pool.close()

    with (
        psycopg.connect(pg_claims.conninfo(settings)) as conn,
        pytest.raises(psycopg.errors.UndefinedColumn),  # the query is really broken
    ):
        conn.execute(pg_claims._ACTORS_OF_HASHES)
    found = asyncio.run(scenario())
    assert [a.token_id if a is not None else None for a in found] == [thika_id, None]
