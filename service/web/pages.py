"""The table of pages: each page's path, title, module, navigation label and the roles
it signs in. The routes, the navigation and the index's cards all read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.domain.actors import Role


@dataclass(frozen=True, slots=True)
class Page:
    page_id: str
    path: str
    title: str
    module: str  # the ES module in static/ that draws the page
    nav_label: str | None  # None: not in the navigation
    roles: tuple[Role, ...] | None  # the token roles it accepts; None: any
    needs_city: bool = False  # the token must belong to a city
    summary: str = ""  # one line for the index
    signs_in: bool = True  # False: a public page, read without a token

    def public(self) -> dict[str, Any]:
        """The page as the browser sees it, in the shell's data block."""
        return {
            "id": self.page_id,
            "path": self.path,
            "title": self.title,
            "nav_label": self.nav_label,
            "roles": None if self.roles is None else [role.value for role in self.roles],
            "needs_city": self.needs_city,
            "summary": self.summary,
            "signs_in": self.signs_in,
        }


PAGES: tuple[Page, ...] = (
    Page(
        page_id="index",
        path="/",
        title="aidmesh",
        module="index.js",
        nav_label=None,
        roles=None,
        signs_in=False,
    ),
    Page(
        page_id="board",
        path="/board",
        title="Incident board",
        module="board.js",
        nav_label="Board",
        roles=None,
        summary=(
            "For operators and observers: every active incident, each request's progress"
            " by claim state, escalation rings on a map, and the event feed as it happens."
        ),
    ),
    Page(
        page_id="respond",
        path="/respond",
        title="Responder console",
        module="respond.js",
        nav_label="Respond",
        roles=(Role.RESPONDER, Role.MANAGER),
        needs_city=True,
        summary=(
            "For a city's duty officer: the requests aimed at your city, most urgent first."
            " Claim part or all, report en route and on site, answer information requests."
        ),
    ),
    Page(
        page_id="manage",
        path="/manage",
        title="Manager console",
        module="manage.js",
        nav_label="Manage",
        roles=(Role.MANAGER,),
        needs_city=True,
        summary=(
            "For the requesting city's emergency manager: declare from a playbook, raise"
            " extra requests, accept or decline claims, cancel requests, close the incident."
        ),
    ),
    Page(
        page_id="roster",
        path="/roster",
        title="Roster",
        module="roster.js",
        nav_label="Roster",
        roles=(Role.MANAGER, Role.RESPONDER, Role.OBSERVER),
        needs_city=True,
        summary=(
            "Your city's roster: the packages it can lend, each resource's units, the cap on"
            " what is committed at once and what claims hold now, live. Managers edit it."
        ),
    ),
    Page(
        page_id="library",
        path="/library",
        title="Playbook library",
        module="library.js",
        nav_label="Library",
        roles=(Role.MANAGER,),
        needs_city=True,
        summary=(
            "For a city's emergency manager: the playbooks your networks' cities published,"
            " each with its track record; diff, dry-run, adopt or fork them; publish yours."
        ),
    ),
    # Pages of one incident: not in the navigation; the board and the manager console link
    # to them, and they sign in any role that may read the incident.
    Page(
        page_id="report",
        path="/incidents/{incident_id}/report",
        title="After-action report",
        module="report.js",
        nav_label=None,
        roles=None,
    ),
    Page(
        page_id="sitrep",
        path="/incidents/{incident_id}/sitreps/{number}",
        title="Situation report",
        module="sitrep.js",
        nav_label=None,
        roles=None,
    ),
    Page(
        page_id="webhooks",
        path="/webhooks",
        title="Webhooks",
        module="webhooks.js",
        nav_label="Webhooks",
        roles=(Role.MANAGER, Role.ADMIN),
        summary=(
            "For a city's manager: push aidmesh's events to the city's own systems. Register"
            " signed endpoints, watch their delivery log, redeliver, pause or rotate their secret."
        ),
    ),
    Page(
        page_id="observatory",
        path="/observatory",
        title="Open-data observatory",
        module="observatory.js",
        nav_label="Observatory",
        roles=None,
        signs_in=False,
        summary=(
            "For anyone, no sign-in: each network's closed incidents and the aid its cities"
            " gave and received, as charts, GeoJSON and HXL-tagged CSV, under the network's"
            " licence."
        ),
    ),
)
