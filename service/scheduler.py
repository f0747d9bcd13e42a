"""The sweeper and its APScheduler job: escalation, claim and request expiry, reminders.

Every replica may run the scheduler. The job finds due work in the database and
runs each step as its own command; the commands re-check under the incident
lock, so a step another replica already took is a no-op here.

APScheduler 3.x skips a run that starts more than `misfire_grace_time` late
(one second by default). A sweep that is late is still worth running, so the
grace is unlimited, runs coalesce and never overlap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from service.commands import offers, sweeps
from service.domain.actors import SYSTEM
from service.domain.errors import DomainError
from service.executor import Executor

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    escalated: int = 0
    claims_expired: int = 0
    requests_expired: int = 0
    reminders: int = 0
    offers_expired: int = 0

    def __bool__(self) -> bool:
        return any(
            (
                self.escalated,
                self.claims_expired,
                self.requests_expired,
                self.reminders,
                self.offers_expired,
            )
        )


class Sweeper:
    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    async def sweep(self) -> SweepReport:
        """One pass over everything due now."""
        report = SweepReport()
        run = self.executor.run
        for request_id in await self.executor.read(SYSTEM, sweeps.due_request_expiries):
            report.requests_expired += await self._step(
                run(SYSTEM, sweeps.expire_request, request_id)
            )
        for claim_id in await self.executor.read(SYSTEM, sweeps.due_claim_expiries):
            report.claims_expired += await self._step(run(SYSTEM, sweeps.expire_claim, claim_id))
        for request_id, ring in await self.executor.read(SYSTEM, sweeps.due_escalations):
            report.escalated += await self._step(
                run(SYSTEM, sweeps.escalate_request, request_id, ring)
            )
        for claim_id in await self.executor.read(SYSTEM, sweeps.due_reminders):
            report.reminders += await self._step(run(SYSTEM, sweeps.remind_manager, claim_id))
        for offer_id in await self.executor.read(
            SYSTEM, offers.due_offer_expiries, sweeps.SWEEP_BATCH
        ):
            report.offers_expired += await self._step(run(SYSTEM, offers.expire_offer, offer_id))
        if report:
            log.info("sweep: %s", report)
        return report

    @staticmethod
    async def _step(step: object) -> int:
        try:
            done = await step  # type: ignore[misc]
        except DomainError as exc:
            # The world moved on between finding the work and doing it.
            log.info("sweep step skipped: %s", exc.detail)
            return 0
        return 1 if done else 0

    async def sweep_safely(self) -> None:
        try:
            await self.sweep()
        except Exception:
            log.exception("sweep failed; the next one retries")


def start_scheduler(sweeper: Sweeper, interval_s: float) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    scheduler.add_job(
        sweeper.sweep_safely,
        "interval",
        seconds=interval_s,
        id="aidmesh-sweep",
        next_run_time=datetime.now(UTC),
    )
    scheduler.start()
    return scheduler
