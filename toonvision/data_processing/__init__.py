"""data_processing: labelled screenshots in, arrays per split out.

    voc.py         labelImg Pascal VOC XML, parsed without trusting it; image-XML pairing;
                   the one box type and rounding rule of every format
    annotations.py every tool's export: format detection, paths kept inside the folder
    voc_pairs.py, yolo.py, coco.py, labelme.py, labelstudio.py, cvat.py   one reader each
    corrections.py label corrections as data (corrections.csv), applied by from_crops
    images.py      decoding by content, resizing (stretch or letterbox), labelled boxes
    placement.py   where a crop lies in the model input: the geometry of stretch/letterbox
    extract.py     every labelled box cropped into a dataset that only grows (the run)
    extractor.py   one screenshot at a time: plan in the manifest, write crops, move, draw
    extract_results.py  what happened to each file, and the run's summary
    manifest.py    the extraction manifest: where each crop came from
    inputs.py      the crops that predict and report read from files, folders, screenshots
    dataset.py     one dataset abstraction (VOC crops or CSV + folder), cached loading
    splits.py      stratified, seeded 60/20/20 splits as data; class balancing
    folds.py       stratified (and grouped) K-fold cross-validation splits
    balance.py     counts per class and split (the article's balance check; figures are
                   drawn by data_visualization.dataset_figures)
    explore.py     flat labelled sets: sizes, formats, duplicates
    preprocess.py  OpenCV background removal and centering (the Pokemon challenge)

Example:
    >>> from toonvision.data_processing import from_crops, load_task_data, stratified_split
    >>> from toonvision.labels import make_task
    >>> dataset = from_crops("data")                                  # doctest: +SKIP
    >>> data = load_task_data(dataset, make_task("binary"), (600, 200))  # doctest: +SKIP
    >>> split = stratified_split(data.y, seed=0)                      # doctest: +SKIP
"""

from toonvision import lazy_exports

_EXPORTS = {
    "parse_annotation": "voc",
    "read_image": "images",
    "find_annotated": "annotations",
    "extract_screenshots": "extract",
    "read_manifest": "manifest",
    "find_inputs": "inputs",
    "iter_crops": "inputs",
    "from_crops": "dataset",
    "from_csv": "dataset",
    "load_task_data": "dataset",
    "stratified_split": "splits",
    "balance_indices": "splits",
    "preprocess_image": "preprocess",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
