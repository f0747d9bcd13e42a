"""The after-action report's charts as inline SVG, drawn by the service (no script, no CDN):
fill over time per request, claims per city, and the aid flowing from helping cities to
the requesting city. Pure: a report and city names in, SVG text out; every name is escaped.

Each series carries `data-series` (the request id or city id) so a reader or a test can
find it without parsing the geometry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from html import escape

from service.domain.reports import AfterActionReport, RequestClocks

WIDTH = 640
_PAD = 40
_PALETTE = ("#1f6feb", "#d73a49", "#2da44e", "#bf8700", "#8250df", "#0a7f85", "#cf222e")


def _svg(kind: str, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{kind}"'
        f' viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}"'
        f' role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _label(at: datetime) -> str:
    return escape(at.replace(microsecond=0).isoformat())


def _colour(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


def fill_chart(report: AfterActionReport) -> str:
    """Share of each request's units committed over time: one step line per request, from
    its raising to the report's end (or the request's own end)."""
    height = 260
    start = min((r.raised_at for r in report.requests), default=report.generated_at)
    end = max(report.generated_at, *(at for r in report.requests for at, _ in r.fill_series))
    span = max((end - start).total_seconds(), 1.0)
    plot_w, plot_h = WIDTH - 2 * _PAD, height - 2 * _PAD

    def x(at: datetime) -> float:
        return round(_PAD + plot_w * (at - start).total_seconds() / span, 1)

    def y(share: float) -> float:
        return round(height - _PAD - plot_h * share, 1)

    body = [
        f'<line x1="{_PAD}" y1="{y(0)}" x2="{WIDTH - _PAD}" y2="{y(0)}" stroke="#888"/>',
        f'<line x1="{_PAD}" y1="{y(0)}" x2="{_PAD}" y2="{y(1)}" stroke="#888"/>',
        f'<text x="{_PAD - 4}" y="{y(1) + 4}" text-anchor="end" font-size="10">100%</text>',
        f'<text x="{_PAD - 4}" y="{y(0) + 4}" text-anchor="end" font-size="10">0</text>',
        f'<text x="{_PAD}" y="{height - 8}" font-size="10">{_label(start)}</text>',
        f'<text x="{WIDTH - _PAD}" y="{height - 8}" text-anchor="end" font-size="10">'
        f"{_label(end)}</text>",
    ]
    for i, r in enumerate(report.requests):
        body.append(_fill_line(r, x, y, end, _colour(i)))
    return _svg("fill", height, "Fill over time per request", body)


def _fill_line(
    r: RequestClocks,
    x: Callable[[datetime], float],
    y: Callable[[float], float],
    end: datetime,
    colour: str,
) -> str:
    stop = r.ended_at or end
    points: list[str] = []
    share = 0.0
    for at, units in r.fill_series:
        points.append(f"{x(at)},{y(share)}")
        share = min(units / r.quantity, 1.0) if r.quantity else 0.0
        points.append(f"{x(at)},{y(share)}")
    points.append(f"{x(max(stop, r.fill_series[-1][0]))},{y(share)}")
    return (
        f'<polyline class="series" data-series="request-{r.request_id}" fill="none"'
        f' stroke="{colour}" stroke-width="1.5" points="{" ".join(points)}">'
        f"<title>request {r.request_id}: {escape(r.resource)}</title></polyline>"
    )


def claims_chart(report: AfterActionReport, names: Mapping[int, str]) -> str:
    """Claims per helping city, as horizontal bars (units claimed in the label)."""
    bar, gap = 18, 6
    claiming = [c for c in report.cities if c.claim_count]  # not the cities that only passed
    height = max(_PAD + len(claiming) * (bar + gap), 60)
    most = max((c.claim_count for c in claiming), default=1) or 1
    label_w = 140
    body = []
    for i, c in enumerate(claiming):
        top = 20 + i * (bar + gap)
        w = round((WIDTH - label_w - 80) * c.claim_count / most, 1)
        name = escape(names.get(c.city_id, f"city {c.city_id}"))
        body.append(
            f'<g class="series" data-series="city-{c.city_id}">'
            f'<text x="{label_w - 6}" y="{top + 13}" text-anchor="end" font-size="11">{name}</text>'
            f'<rect x="{label_w}" y="{top}" width="{w}" height="{bar}" fill="{_colour(i)}"/>'
            f'<text x="{label_w + w + 4}" y="{top + 13}" font-size="11">{c.claim_count}'
            f" ({c.units_claimed} units)</text></g>"
        )
    return _svg("claims", height, "Claims per city", body)


def flow_chart(report: AfterActionReport, names: Mapping[int, str]) -> str:
    """Aid flow: each helping city on the left, a band to the requesting city on the right
    as wide as the units it committed."""
    helpers = [c for c in report.cities if c.units_claimed]
    row = 36
    height = max(_PAD + len(helpers) * row, 80)
    total = sum(c.units_claimed for c in helpers) or 1
    sink_x, sink_y = WIDTH - 160, height / 2
    body = [
        f'<text class="sink" x="{sink_x + 8}" y="{sink_y + 4}" font-size="12" font-weight="bold">'
        f"{escape(names.get(report.requesting_city_id, 'requesting city'))}</text>",
    ]
    for i, c in enumerate(helpers):
        top = 20 + i * row
        width = max(round(24 * c.units_claimed / total, 1), 1.0)
        name = escape(names.get(c.city_id, f"city {c.city_id}"))
        body.append(
            f'<g class="series" data-series="city-{c.city_id}">'
            f'<text x="150" y="{top + 4}" text-anchor="end" font-size="11">{name}</text>'
            f'<path d="M156,{top} C{sink_x / 2 + 80},{top} {sink_x / 2 + 80},{sink_y}'
            f' {sink_x},{sink_y}" fill="none" stroke="{_colour(i)}" stroke-opacity="0.7"'
            f' stroke-width="{width}"><title>{name}: {c.units_claimed} units</title></path></g>'
        )
    return _svg("flow", height, "Aid flow to the requesting city", body)


def report_charts(report: AfterActionReport, names: Mapping[int, str]) -> dict[str, str]:
    return {
        "fill": fill_chart(report),
        "claims": claims_chart(report, names),
        "flow": flow_chart(report, names),
    }
