"""The reliability diagram: how sure a model was, against how often it was right."""

from __future__ import annotations

from matplotlib.figure import Figure

from toonvision.model_utils.statistics.calibration import ReliabilityTable


def reliability_figure(raw: ReliabilityTable, calibrated: ReliabilityTable | None = None,
                       temperature: float | None = None) -> Figure:
    """Accuracy per confidence bin, raw and (when given) after temperature scaling.

    A calibrated model's bars touch the diagonal: of the images it was 80% sure about, 80%
    were right. Bars below the diagonal are over-confidence.

    Args:
        raw: the model's own probabilities, binned (`calibration.reliability_table`).
        calibrated: the same images after temperature scaling, binned.
        temperature: the fitted temperature, for the legend.
    """
    tables = [("raw", raw)] + ([] if calibrated is None else [
        (f"calibrated (T = {temperature:.2f})" if temperature else "calibrated", calibrated)])
    figure = Figure(figsize=(4.2 * len(tables), 3.8))
    axes = figure.subplots(1, len(tables), squeeze=False)[0]
    for axis, (name, table) in zip(axes, tables, strict=True):
        width = table.edges[1] - table.edges[0]
        filled = table.counts > 0
        axis.bar(table.edges[:-1][filled], table.accuracy[filled], width=width, align="edge",
                 color="C0", edgecolor="black", label="accuracy")
        axis.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.set_xlabel("confidence (highest probability)")
        axis.set_ylabel("accuracy")
        axis.set_title(f"{name}: ECE {table.expected_calibration_error:.3f}", fontsize=10)
        axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    return figure
