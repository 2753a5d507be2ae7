"""The digest's chart: utilisation per GPU over the period (a heatmap) beside the mean per GPU type.

Why this way:
- matplotlib's object API (`Figure` + the Agg canvas), never pyplot: no global figure state, no
  GUI backend to pick, so it runs headless and from the scheduler's threads alike.
- A fixed size in inches and dpi, saved without "tight" bounding boxes: every chart is
  1200 × 700 pixels whatever its contents, so Slack lays it out the same each day.
- A thousand rows cannot be read, so the heatmap shows the `max_rows` GPUs with the lowest mean
  utilisation (the ones worth a look) and says how many others there are and their mean.
  Buckets without a reading are grey, not 0 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.store.telemetry import GridRow, Resolution, UtilizationGrid
from bot.telemetry.digest import GroupFigures

WIDTH_IN, HEIGHT_IN, DPI = 12.0, 7.0, 100
NO_READING_COLOUR = "#d9d9d9"


def utilization_chart(
    grid: UtilizationGrid, by_model: Sequence[GroupFigures] = (), max_rows: int = 40
) -> bytes:
    """The chart as PNG bytes (1200 × 700)."""
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(figure)
    layout = figure.add_gridspec(1, 2, width_ratios=(3, 1), wspace=0.55, left=0.11, right=0.97, bottom=0.14)
    heat = figure.add_subplot(layout[0])
    bars = figure.add_subplot(layout[1])
    _heatmap(heat, figure, grid, max_rows)
    _model_bars(bars, by_model)
    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _mean(row: GridRow) -> float | None:
    known = [value for value in row.utilization_pct if value is not None]
    return sum(known) / len(known) if known else None


def _heatmap(axes: matplotlib.axes.Axes, figure: Figure, grid: UtilizationGrid, max_rows: int) -> None:
    means = {row.name: _mean(row) for row in grid.rows}
    ranked = sorted(grid.rows, key=lambda row: (means[row.name] is None, means[row.name] or 0.0, row.name))
    shown, others = ranked[:max_rows], ranked[max_rows:]
    if not shown or not grid.bucket_starts:
        axes.set_axis_off()
        axes.text(
            0.5, 0.5, "no GPU samples in this period", ha="center", va="center", transform=axes.transAxes
        )
        return
    cells = np.ma.masked_invalid(
        np.array([[np.nan if v is None else v for v in row.utilization_pct] for row in shown], dtype=float)
    )
    colours = matplotlib.colormaps["viridis"].with_extremes(bad=NO_READING_COLOUR)
    image = axes.imshow(cells, aspect="auto", cmap=colours, vmin=0, vmax=100, interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02, label="utilisation %")
    axes.set_yticks(
        range(len(shown)), [row.name for row in shown], fontsize=max(4, min(9, 360 // len(shown)))
    )
    step = max(1, len(grid.bucket_starts) // 8)
    label = (
        "%H:%M" if grid.resolution is Resolution.MINUTE or len(grid.bucket_starts) <= 48 else "%m-%d %H:%M"
    )
    ticks = range(0, len(grid.bucket_starts), step)
    axes.set_xticks(ticks, [grid.bucket_starts[i].strftime(label) for i in ticks], fontsize=8, rotation=30)
    axes.set_xlabel(f"UTC, one column per {grid.resolution.value}")
    title = f"Utilisation per GPU: the {len(shown)} least used of {len(grid.rows):,}"
    if others:
        known = [m for row in others if (m := means[row.name]) is not None]
        mean = f" (mean {sum(known) / len(known):.1f} %)" if known else ""
        title += f"\n{len(others):,} other GPUs not shown{mean}"
    else:
        title = f"Utilisation per GPU ({len(shown)})"
    axes.set_title(title, fontsize=11)


def _short(model: str) -> str:
    """A model's name without the vendor, cut to fit beside a bar."""
    name = model.removeprefix("NVIDIA ").strip()
    return name if len(name) <= 18 else name[:17] + "…"


def _model_bars(axes: matplotlib.axes.Axes, by_model: Sequence[GroupFigures]) -> None:
    measured = [group for group in by_model if group.mean_utilization_pct is not None][:12]
    if not measured:
        axes.set_axis_off()
        return
    names = [f"{_short(group.name)}\n({group.gpus:,} GPUs)" for group in measured]
    values = [group.mean_utilization_pct or 0.0 for group in measured]
    positions = range(len(measured))
    axes.barh(positions, values, color="#3b75af")
    axes.set_yticks(positions, names, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("mean utilisation %")
    axes.set_title("By GPU type", fontsize=11)
    for position, value in zip(positions, values, strict=True):
        axes.text(min(value + 2, 80), position, f"{value:.0f} %", va="center", fontsize=8)
