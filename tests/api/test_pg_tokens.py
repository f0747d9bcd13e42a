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
from tests.support import World, postgres_only


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with postgres_only(tmp_path_factory.mktemp("pg")) as url:
        yield url


def _mint(executor: Executor, world: World, role: str, city: str, **kw: Any) -> tuple[int, str]:
    command = functools.partial(mint_token, **kw)
    (token, secret), _ = executor.run_sync(
        SYSTEM, command, Role(role), world.city_ids[city], f"{role}-{city}"
    )
    return int(token.id), secret


def test_tokens_asked_together_are_looked_up_once_each_caller_its_own(
    executor: Executor, world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
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
        try:
            secrets = [thika, nairobi, thika, revoked, "unknown-secret", expired, nairobi]
            by_secret = await asyncio.gather(*(tokens.actor_for_secret(s) for s in secrets))
            # A websocket's commands ask by id, gathered the same way.
            token_ids = [nairobi_id, revoked_id, thika_id, 999_999, expired_id, thika_id]
            by_id = await asyncio.gather(*(tokens.actor_for_token_id(i) for i in token_ids))
            together = list(queries)
            # Revoked now: the very next lookups refuse it.
            executor.run_sync(SYSTEM, revoke_token, thika_id)
            after = [
                await tokens.actor_for_secret(thika),
                await tokens.actor_for_token_id(thika_id),
            ]
            return by_secret, by_id, together, after
        finally:
            await pool.close()

    queries: list[int] = []
    rows_of = pg_claims.PgTokens._rows

    def counted(tokens: pg_claims.PgTokens, query: str) -> Any:
        rows = rows_of(tokens, query)

        async def counting(keys: list[object]) -> Any:
            queries.append(len(set(keys)))
            return await rows(keys)

        return counting

    monkeypatch.setattr(pg_claims.PgTokens, "_rows", counted)
    by_secret, by_id, together, after = asyncio.run(scenario())
    assert together == [5, 5]  # one query each way, for the distinct keys asked
    assert [a.token_id if a is not None else None for a in by_secret] == [
        thika_id,
        nairobi_id,
        thika_id,
        None,
        None,
        None,
        nairobi_id,
    ]
    assert [a.token_id if a is not None else None for a in by_id] == [
        nairobi_id,
        None,
        thika_id,
        None,
        None,
        thika_id,
    ]
    thika_actor, nairobi_actor = by_secret[0], by_secret[1]
    assert thika_actor is not None and thika_actor.role is Role.RESPONDER
    assert thika_actor.city_id == world.city_ids["thika"] and thika_actor.scopes is None
    assert nairobi_actor is not None and nairobi_actor.scopes == frozenset({"claims"})
    assert by_id[0] == nairobi_actor and by_id[2] == thika_actor
    assert after == [None, None]


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
