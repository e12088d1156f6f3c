"""data_visualization: every figure, what a model sees, and the one-page report.

    figures.py     figures as `matplotlib.figure.Figure` objects, and the one way to save them
    dataset_figures.py  balance per split and taxonomy, a first look, the preprocessing steps
    comparison_figures.py  learning curves, box plots, the optimizer study
    interpret.py   any classifier flattened into one graph; activations and filter patterns
    gradcam.py     Grad-CAM, Grad-CAM++ and saliency heatmaps, batched and compiled
    explanations.py  every explanation method (and a random map) behind one interface
    faithfulness.py  deletion/insertion AUC, average drop, the sanity check, the best method
    evaluation.py  a model evaluated on labelled images: predictions, errors, metrics
    report.py      the heatmap report, one static HTML page (report_sections.py: what each
                   section shows; report_explanations.py: which heatmaps to trust;
                   report_page.py: the page's HTML)

Nothing here calls `matplotlib.use` or touches pyplot's state, so a notebook keeps its backend.

Example:
    >>> from toonvision.data_visualization import GradCam
    >>> heatmaps, probabilities = GradCam(model)(images)              # doctest: +SKIP
"""

from toonvision import lazy_exports

_EXPORTS = {
    "save_figure": "figures",
    "layer_activations": "interpret",
    "filter_patterns": "interpret",
    "GradCam": "gradcam",
    "compare_methods": "faithfulness",
    "score_maps": "faithfulness",
    "evaluate": "evaluation",
    "load_inputs": "evaluation",
    "write_report": "report",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
