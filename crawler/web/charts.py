"""A bar chart as inline SVG, drawn on the server: no script, and the page's CSP allows it
(the SVG is markup in the page, styled by the stylesheet). Every label is escaped."""

from __future__ import annotations

from datetime import date, timedelta

from markupsafe import Markup, escape

WIDTH, HEIGHT, TOP, BOTTOM = 600, 140, 14, 20


def days(last: date, count: int) -> list[str]:
    """The `count` days ending with `last`, oldest first, as `YYYY-MM-DD`."""
    return [(last - timedelta(days=back)).isoformat() for back in range(count - 1, -1, -1)]


def bar_chart(values: list[tuple[str, int]], title: str) -> Markup:
    """One bar per (label, value), the value on top of the bar and in its tooltip."""
    peak = max((value for _, value in values), default=0) or 1
    step = WIDTH / max(len(values), 1)
    usable = HEIGHT - TOP - BOTTOM
    bars = []
    for number, (label, value) in enumerate(values):
        height = round(usable * value / peak, 1)
        x, y = round(number * step + 1, 1), round(TOP + usable - height, 1)
        bars.append(
            Markup(
                '<g><title>{label}: {value}</title><rect class="bar" x="{x}" y="{y}"'
                ' width="{w}" height="{h}"/>{number}</g>'
            ).format(
                label=label,
                value=value,
                x=x,
                y=y,
                w=round(step - 2, 1),
                h=height,
                number=_value_label(value, x + step / 2, y - 2),
            )
        )
    axis = _axis(values, step)
    return Markup(
        '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{title}"'
        ' xmlns="http://www.w3.org/2000/svg">{bars}{axis}</svg>'
    ).format(w=WIDTH, h=HEIGHT, title=title, bars=Markup("").join(bars), axis=axis)


def _value_label(value: int, x: float, y: float) -> Markup:
    if not value:
        return Markup("")
    return Markup('<text x="{x}" y="{y}" text-anchor="middle">{value}</text>').format(
        x=round(x, 1), y=round(y, 1), value=value
    )


def _axis(values: list[tuple[str, int]], step: float) -> Markup:
    """The first and last labels under the bars: enough to read a month at a glance."""
    if not values:
        return Markup("")
    first, last = escape(values[0][0]), escape(values[-1][0])
    return Markup(
        '<text x="0" y="{y}">{first}</text><text x="{w}" y="{y}" text-anchor="end">{last}</text>'
    ).format(y=HEIGHT - 4, first=first, last=last, w=WIDTH)
