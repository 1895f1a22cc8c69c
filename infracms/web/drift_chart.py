"""A chart of drift found and run outcomes per day, drawn as SVG on the server.

Bars per day: runs that succeeded (below) and failed (stacked above), and a dot for the
hosts found drifted that day. Only numbers and dates go into the markup; no script.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

from infracms.services.drift import Day

WIDTH, HEIGHT, PAD, AXIS = 640, 160, 24, 18


def chart(days: Sequence[Day]) -> Markup:
    """An accessible inline SVG of `days` (oldest first)."""
    if not days:
        return Markup("")
    top = max([d.succeeded + d.failed for d in days] + [d.drift for d in days] + [1])
    step = (WIDTH - 2 * PAD) / len(days)
    scale = (HEIGHT - PAD - AXIS) / top
    parts = [
        f'<svg class="drift-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="drift-chart-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="drift-chart-title">Drift found and run outcomes per day, '
        f"{days[0].day:%d %b} to {days[-1].day:%d %b}</title>",
        f'<line x1="{PAD}" y1="{HEIGHT - AXIS}" x2="{WIDTH - PAD}" y2="{HEIGHT - AXIS}" '
        f'stroke="currentColor" stroke-opacity="0.3"/>',
        f'<text x="{PAD}" y="{PAD - 8}" font-size="10" fill="currentColor">{top}</text>',
    ]
    for i, day in enumerate(days):
        parts.append(_day(day, PAD + i * step, step, scale))
        if i % 7 == 0:
            parts.append(
                f'<text x="{PAD + i * step:.1f}" y="{HEIGHT - 4}" font-size="10" '
                f'fill="currentColor">{day.day:%d %b}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers and dates only, formatted here


def _day(day: Day, x: float, step: float, scale: float) -> str:
    base = HEIGHT - AXIS
    width = max(step * 0.6, 1.0)
    ok, bad = day.succeeded * scale, day.failed * scale
    label = (
        f"{day.day:%Y-%m-%d}: {day.succeeded} runs succeeded, {day.failed} failed, "
        f"{day.drift} drift found"
    )
    shapes = [f"<g><title>{label}</title>"]
    if ok:
        shapes.append(
            f'<rect class="ok" x="{x:.1f}" y="{base - ok:.1f}" width="{width:.1f}" '
            f'height="{ok:.1f}" fill="#2e7d32"/>'
        )
    if bad:
        shapes.append(
            f'<rect class="failed" x="{x:.1f}" y="{base - ok - bad:.1f}" width="{width:.1f}" '
            f'height="{bad:.1f}" fill="#c62828"/>'
        )
    if day.drift:
        shapes.append(
            f'<circle class="drift" cx="{x + width / 2:.1f}" cy="{base - day.drift * scale:.1f}" '
            f'r="3.5" fill="#ef6c00"/>'
        )
    shapes.append("</g>")
    return "".join(shapes)
