"""Every labelling tool's export gives the same crops as labelImg VOC, and its traps are met.

The exports are written here from the VOC boxes of real sets (`to_<format>` helpers follow
each tool's documented layout), since no real YOLO/COCO/labelme/Label Studio/CVAT export of
these images exists.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from toonvision import ToonvisionError, cli
from toonvision.data_processing import voc
from toonvision.data_processing.annotations import (
    IMAGE_NOT_FOUND,
    OUTSIDE_FOLDER,
    UNUSABLE_ANNOTATION_FILE,
    find_annotated,
)
from toonvision.data_processing.extract import extract
from toonvision.data_processing.extract_results import (
    SAME_CONTENT,
    UNUSABLE_OBJECT,
    ExtractionSummary,
)
from toonvision.data_processing.images import encode_image, read_image
from toonvision.data_processing.manifest import read_manifest

# (image file, width, height, [(label, xmin, ymin, xmax, ymax), ...])
Shot = tuple[Path, int, int, list[tuple[str, int, int, int, int]]]


def run_all(folder: Path, data_dir: Path, **options) -> ExtractionSummary:
    summary = ExtractionSummary()
    for result in extract(folder, data_dir, **options):
        summary.add(result)
    return summary


def crops(data_dir: Path) -> Counter:
    """(label, hash of the crop's pixels) for every crop written."""
    return Counter((path.stem.rpartition("_")[0],
                    hashlib.sha256(read_image(path).tobytes()).hexdigest())
                   for path in (data_dir / "unsorted").rglob("*.png"))


def names_of(shots: list[Shot]) -> list[str]:
    return sorted({box[0] for _, _, _, boxes in shots for box in boxes})


def to_yolo(shots: list[Shot], out: Path, yaml_names: str | None = None) -> None:
    """ultralytics/Roboflow layout: train/images + train/labels, data.yaml (or classes.txt)."""
    names = names_of(shots)
    for number, (image, width, height, boxes) in enumerate(shots):
        split = "train" if number % 2 else "valid"
        (out / split / "images").mkdir(parents=True, exist_ok=True)
        (out / split / "labels").mkdir(parents=True, exist_ok=True)
        shutil.copy(image, out / split / "images" / image.name)
        lines = [f"{names.index(label)} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} "
                 f"{(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}"
                 for label, x0, y0, x1, y1 in boxes]
        # Roboflow's label files end without a newline
        (out / split / "labels" / f"{image.stem}.txt").write_text("\n".join(lines))
    if yaml_names == "list":
        (out / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\n"
                                       f"nc: {len(names)}\nnames: {json.dumps(names)}\n")
    elif yaml_names == "mapping":
        (out / "data.yaml").write_text("path: /nowhere\nnames:\n" + "".join(
            f"  {index}: {name}\n" for index, name in enumerate(names)))
    else:
        (out / "classes.txt").write_text("\n".join(names) + "\n")


def to_coco(shots: list[Shot], out: Path) -> None:
    """Roboflow COCO: one `_annotations.coco.json` per split, category 0 unused."""
    names = names_of(shots)
    for split in ("train", "valid"):
        chosen = [shot for number, shot in enumerate(shots)
                  if (number % 2 == 1) == (split == "train")]
        (out / split).mkdir(parents=True)
        images, annotations = [], []
        for image_id, (image, width, height, boxes) in enumerate(chosen):
            shutil.copy(image, out / split / image.name)
            images.append({"id": image_id, "file_name": image.name, "width": width,
                           "height": height})
            annotations += [{"id": len(annotations), "image_id": image_id,
                             "category_id": names.index(label) + 1,
                             "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                             "segmentation": [], "iscrowd": 0}
                            for label, x0, y0, x1, y1 in boxes]
        categories = [{"id": 0, "name": "cards", "supercategory": "none"}] + [
            {"id": index + 1, "name": name, "supercategory": "cards"}
            for index, name in enumerate(names)]
        (out / split / "_annotations.coco.json").write_text(json.dumps(
            {"info": {}, "licenses": [], "categories": categories, "images": images,
             "annotations": annotations}))


def to_labelme(shots: list[Shot], out: Path) -> None:
    out.mkdir(parents=True)
    for image, width, height, boxes in shots:
        shutil.copy(image, out / image.name)
        shapes = [{"label": label, "points": [[x1, y1], [x0, y0]], "group_id": None,
                   "shape_type": "rectangle", "flags": {}} for label, x0, y0, x1, y1 in boxes]
        (out / f"{image.stem}.json").write_text(json.dumps(
            {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image.name,
             "imageData": None, "imageHeight": height, "imageWidth": width}))


def to_labelstudio(shots: list[Shot], out: Path) -> None:
    (out / "images").mkdir(parents=True)
    tasks = []
    for number, (image, width, height, boxes) in enumerate(shots):
        shutil.copy(image, out / "images" / image.name)
        result = [{"original_width": width, "original_height": height, "image_rotation": 0,
                   "value": {"x": x0 / width * 100, "y": y0 / height * 100,
                             "width": (x1 - x0) / width * 100, "height": (y1 - y0) / height * 100,
                             "rotation": 0, "rectanglelabels": [label]},
                   "id": f"r{index}", "from_name": "label", "to_name": "image",
                   "type": "rectanglelabels", "origin": "manual"}
                  for index, (label, x0, y0, x1, y1) in enumerate(boxes)]
        tasks.append({"id": number + 1, "annotations": [{"id": number + 1, "result": result,
                                                         "was_cancelled": False}],
                      "file_upload": f"8f3a2b1c-{image.name}", "predictions": [],
                      "data": {"image": f"/data/upload/1/8f3a2b1c-{image.name}"}})
    (out / "project-1-at-2024.json").write_text(json.dumps(tasks))


def to_cvat(shots: list[Shot], out: Path) -> None:
    (out / "images").mkdir(parents=True)
    images = []
    for number, (image, width, height, boxes) in enumerate(shots):
        shutil.copy(image, out / "images" / image.name)
        images.append(f'<image id="{number}" name="{image.name}" width="{width}" '
                      f'height="{height}">' + "".join(
                          f'<box label="{label}" source="manual" occluded="0" xtl="{x0:.2f}" '
                          f'ytl="{y0:.2f}" xbr="{x1:.2f}" ybr="{y1:.2f}" z_order="0"></box>'
                          for label, x0, y0, x1, y1 in boxes) + "</image>")
    (out / "annotations.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version><meta/>'
        + "".join(images) + "</annotations>")


WRITERS = {
    "yolo classes.txt": lambda shots, out: to_yolo(shots, out),
    "yolo data.yaml list": lambda shots, out: to_yolo(shots, out, "list"),
    "yolo data.yaml mapping": lambda shots, out: to_yolo(shots, out, "mapping"),
    "coco": to_coco, "labelme": to_labelme, "labelstudio": to_labelstudio, "cvat": to_cvat,
}


@pytest.fixture(scope="module")
def card_shots(shared_data: Path) -> list[Shot]:
    """The first 24 real card photos with their VOC boxes (both image sizes among them)."""
    shots = []
    for xml in sorted((shared_data / "cards_voc" / "train").glob("*.xml"))[:24]:
        annotation = voc.parse_annotation(xml)
        image = next(path for path in xml.parent.iterdir()
                     if path.stem == xml.stem and path.suffix.lower() == ".jpg")
        height, width = read_image(image).shape[:2]
        shots.append((image, width, height,
                      [(item.label, *item.box) for item in annotation.objects]))
    return shots


@pytest.fixture(scope="module")
def voc_crops(card_shots, tmp_path_factory) -> Counter:
    folder = tmp_path_factory.mktemp("voc")
    for image, _, _, _ in card_shots:
        shutil.copy(image, folder / image.name)
        shutil.copy(image.with_suffix(".xml"), folder / f"{image.stem}.xml")
    data = folder / "data"
    summary = run_all(folder, data, format=None)
    assert not summary.skipped and summary.crops_written == sum(len(s[3]) for s in card_shots)
    return crops(data)


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_the_same_boxes_in_every_format_give_identical_crops(writer, card_shots, voc_crops,
                                                             tmp_path):
    WRITERS[writer](card_shots, tmp_path / "export")
    summary = run_all(tmp_path / "export", tmp_path / "data")
    assert not summary.skipped, [str(problem) for problem in summary.skipped]
    assert crops(tmp_path / "data") == voc_crops


def test_detection_names_mixed_formats_and_format_forces_one(card_shots, tmp_path):
    to_labelme(card_shots[:2], tmp_path / "export")
    to_cvat(card_shots[2:4], tmp_path / "export" / "cvat")
    with pytest.raises(ToonvisionError, match="several formats.*cvat.*labelme.*--format"):
        find_annotated(tmp_path / "export")
    assert len(find_annotated(tmp_path / "export", format="cvat").pairs) == 2
    assert len(find_annotated(tmp_path / "export", format="labelme").pairs) == 2


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (96, 64),
                orientation: int | None = None) -> np.ndarray:
    image = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    if orientation is None:
        path.write_bytes(encode_image(image, path.suffix))
    else:
        exif = Image.new("RGB", (1, 1)).getexif()
        exif[0x0112] = orientation
        Image.fromarray(image).save(path, "PNG", exif=exif)
    return image


def test_yolo_traps_are_named_and_the_good_lines_extracted(tmp_path):
    root = tmp_path / "export"
    write_image(root / "images" / "shot 1é.png")
    write_image(root / "images" / "background.png", seed=1)
    (root / "labels").mkdir(parents=True)
    (root / "classes.txt").write_text("ace\nking\n")
    (root / "labels" / "shot 1é.txt").write_text(
        "0 0.5 0.5 0.25 0.5\n7 0.5 0.5 0.1 0.1\n1 nan 0.5 0.1 0.1\n1 0.5 0.5\n"
        "1 0.5 0.5 0 0.2\n1 0.1 0.1 0.3 0.1 0.3 0.4")   # no final newline
    (root / "labels" / "gone.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    summary = run_all(root, tmp_path / "data")
    assert summary.crops_per_label == Counter({"ace": 1, "king": 1})
    details = " ".join(str(problem) for problem in summary.skipped)
    assert "line 2: class 7 is not among the 2 class names" in details
    assert "line 3:" in details and "NaN" in details
    assert "line 4: 2 numbers after the class" in details
    assert "empty box" in details and "gone.txt" in details
    kinds = Counter(note.kind for note in summary.notes)
    assert kinds["screenshot without boxes"] == 1          # the background image
    assert kinds["polygon cropped by its bounding box"] == 1
    crop = read_image(next((tmp_path / "data" / "unsorted").rglob("king_*.png")))
    assert crop.shape[:2] == (20, 19)   # y 6.4..25.6 -> 6..26, x 9.6..28.8 -> 10..29


def test_labelimg_classes_txt_that_disagrees_with_data_yaml_is_noted(tmp_path):
    root = tmp_path / "export"
    write_image(root / "images" / "a.png")
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "a.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text("names: [ace, king]\n")
    (root / "classes.txt").write_text("king\nace\n")
    summary = run_all(root, tmp_path / "data")
    assert any(note.kind == "class name files disagree" for note in summary.notes)


def coco_file(images: list[dict], annotations: list[dict]) -> str:
    return json.dumps({"categories": [{"id": 0, "name": "shots", "supercategory": "none"},
                                      {"id": 1, "name": "ace", "supercategory": "shots"}],
                       "images": images, "annotations": annotations})


def test_coco_traps_missing_images_crowds_unknown_categories_and_outside_paths(tmp_path):
    root = tmp_path / "export"
    write_image(root / "a.png")
    write_image(tmp_path / "outside.png", seed=3)
    box = {"bbox": [10, 10, 20, 20], "iscrowd": 0}
    (root / "_annotations.coco.json").write_text(coco_file(
        [{"id": 1, "file_name": "a.png", "width": 96, "height": 64},
         {"id": 2, "file_name": "missing.png", "width": 96, "height": 64},
         {"id": 3, "file_name": "../outside.png", "width": 96, "height": 64},
         {"id": 4, "file_name": "/etc/passwd.png", "width": 96, "height": 64}],
        [{"id": 1, "image_id": 1, "category_id": 1, **box},
         {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 96, 64], "iscrowd": 1},
         {"id": 3, "image_id": 1, "category_id": 9, **box},
         {"id": 4, "image_id": 2, "category_id": 1, **box},
         {"id": 5, "image_id": 3, "category_id": 1, **box},
         {"id": 6, "image_id": 77, "category_id": 1, **box}]))
    (root / "broken").mkdir()
    (root / "broken" / "_annotations.coco.json").write_text('{"images": [{"id": 1, "fi')
    summary = run_all(root, tmp_path / "data")
    assert summary.crops_per_label == Counter({"ace": 1})
    kinds = Counter(problem.kind for problem in summary.skipped)
    assert kinds == Counter({IMAGE_NOT_FOUND: 1, OUTSIDE_FOLDER: 2, UNUSABLE_OBJECT: 1,
                             UNUSABLE_ANNOTATION_FILE: 2})
    assert any("truncated" in str(problem) for problem in summary.skipped)
    assert any("image_id 77" in str(problem) for problem in summary.skipped)
    assert any("crowd" in str(note) for note in summary.notes)
    assert not any("outside" in path.name for path in (tmp_path / "data").rglob("*"))


def test_one_screenshot_in_two_splits_is_extracted_once(tmp_path):
    root = tmp_path / "export"
    for split in ("train", "valid"):
        write_image(root / split / f"{split}_copy.png")
        (root / split / "_annotations.coco.json").write_text(coco_file(
            [{"id": 0, "file_name": f"{split}_copy.png", "width": 96, "height": 64}],
            [{"id": 0, "image_id": 0, "category_id": 1, "bbox": [5, 5, 30, 30], "iscrowd": 0}]))
    summary = run_all(root, tmp_path / "data")
    assert summary.crops_written == 1 and summary.already_extracted == 1
    assert [note.kind for note in summary.notes] == [SAME_CONTENT]


def test_label_studio_prefixes_local_files_rotation_and_polygons(tmp_path):
    root = tmp_path / "export"
    write_image(root / "shots" / "street.png", size=(100, 50))
    write_image(root / "other.png", seed=2, size=(100, 50))
    region = {"original_width": 100, "original_height": 50, "type": "rectanglelabels"}
    tasks = [
        {"id": 1, "data": {"image": "/data/upload/3/0a1b2c3d-street.png"}, "annotations": [
            {"was_cancelled": False, "result": [
                {**region, "value": {"x": 10, "y": 20, "width": 20, "height": 40,
                                     "rotation": 90, "rectanglelabels": ["toon_dog"]}},
                {"type": "polygonlabels", "original_width": 100, "original_height": 50,
                 "value": {"points": [[50, 10], [70, 10], [60, 50]],
                           "polygonlabels": ["cog_bb_flunky"]}}]}]},
        {"id": 2, "data": {"image": "/data/local-files/?d=C%3A%5Cshots%5Cother.png"},
         "annotations": [{"was_cancelled": True, "result": []}, {"result": [
             {**region, "value": {"x": 0, "y": 0, "width": 50, "height": 50,
                                  "rectanglelabels": ["toon_cat"]}}]}]},
    ]
    (root / "export.json").write_text(json.dumps(tasks))
    summary = run_all(root, tmp_path / "data")
    assert not summary.skipped, [str(problem) for problem in summary.skipped]
    assert summary.crops_per_label == Counter({"toon_dog": 1, "cog_bb_flunky": 1, "toon_cat": 1})
    boxes = {record.label: (record.xmin, record.ymin, record.xmax, record.ymax)
             for record in read_manifest(tmp_path / "data" / "manifest.csv")}
    # a 20x20 px box at (10, 10) turned 90 degrees clockwise about its top-left corner covers
    # x -10..10, y 10..30, clipped to the image; the polygon's bounds; 50% of 100x50
    assert boxes == {"toon_dog": (0, 10, 10, 30), "cog_bb_flunky": (50, 5, 70, 25),
                     "toon_cat": (0, 0, 50, 25)}


def test_cvat_entities_and_labelme_truncation_are_contained(tmp_path):
    root = tmp_path / "export"
    write_image(root / "a.png")
    (root / "annotations.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<annotations><image name="a.png"><box label="&x;" xtl="1" ytl="1" xbr="9" ybr="9"/>'
        "</image></annotations>")
    summary = run_all(root, tmp_path / "data", format="cvat")
    assert [problem.kind for problem in summary.skipped] == [UNUSABLE_ANNOTATION_FILE]
    assert "DOCTYPE" in str(summary.skipped[0])
    (root / "annotations.xml").unlink()
    (root / "a.json").write_text('{"shapes": [{"label": "ace", "points": [[1, 1], [9, 9]], "sh')
    write_image(root / "b.png", seed=1)
    (root / "b.json").write_text(json.dumps({"shapes": [{"label": "ace", "shape_type": "point",
                                                         "points": [[3, 3]]}],
                                             "imagePath": "b.png", "imageData": None}))
    summary = run_all(root, tmp_path / "data", format="labelme")
    assert {problem.path.name for problem in summary.skipped} == {"a.json", "b.json"}


def test_labelme_image_data_is_used_when_the_image_file_is_absent(tmp_path):
    import base64

    image = np.random.default_rng(5).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "gone.json").write_text(json.dumps({
        "shapes": [{"label": "ace", "shape_type": "rectangle", "points": [[10, 5], [30, 25]]}],
        "imagePath": "..\\\\elsewhere\\\\gone.png", "imageHeight": 40, "imageWidth": 60,
        "imageData": base64.b64encode(encode_image(image, ".png")).decode()}))
    summary = run_all(tmp_path / "export", tmp_path / "data")
    assert summary.crops_written == 1 and not summary.skipped
    crop = read_image(next((tmp_path / "data" / "unsorted").rglob("*.png")))
    assert np.array_equal(crop, image[5:25, 10:30])


def test_exif_orientation_follows_the_size_the_annotation_recorded(tmp_path):
    raw = write_image(tmp_path / "export" / "turned.png", size=(96, 64), orientation=6)
    turned = np.ascontiguousarray(np.rot90(raw, -1))   # 64 wide, 96 high, as viewers show it
    (tmp_path / "export" / "turned.json").write_text(json.dumps({
        "shapes": [{"label": "ace", "shape_type": "rectangle", "points": [[0, 0], [10, 90]]}],
        "imagePath": "turned.png", "imageData": None, "imageWidth": 64, "imageHeight": 96}))
    summary = run_all(tmp_path / "export", tmp_path / "data")
    assert summary.crops_written == 1 and not summary.skipped
    crop = read_image(next((tmp_path / "data" / "unsorted").rglob("*.png")))
    assert np.array_equal(crop, turned[0:90, 0:10])


def test_voc_decimal_coordinates_round_to_the_nearest_pixel(tmp_path, write_screenshot):
    image = write_screenshot(tmp_path / "shots", "a", [("ace", 10, 10, 20, 20)])
    xml = image.with_suffix(".xml")
    xml.write_text(xml.read_text().replace("<xmin>10</xmin>", "<xmin>10.4</xmin>")
                   .replace("<xmax>20</xmax>", "<xmax>30.6</xmax>"))
    run_all(tmp_path / "shots", tmp_path / "data")
    crop = read_image(next((tmp_path / "data" / "unsorted").rglob("*.png")))
    assert crop.shape[:2] == (10, 21)


def test_dry_run_writes_nothing_and_reports_the_boxes(card_shots, tmp_path, capsys):
    to_yolo(card_shots[:6], tmp_path / "export", "list")
    status = cli.main(["extract", str(tmp_path / "export"), "--data-dir",
                       str(tmp_path / "data"), "--dry-run"])
    output = capsys.readouterr().out
    boxes = sum(len(shot[3]) for shot in card_shots[:6])
    assert status == 0 and "format: yolo" in output
    assert f"crops that would be written (dry run, nothing written): {boxes}" in output
    assert not (tmp_path / "data").exists()


def test_move_is_refused_for_exports_other_than_voc(card_shots, tmp_path):
    to_coco(card_shots[:2], tmp_path / "export")
    with pytest.raises(ToonvisionError, match="--move"):
        run_all(tmp_path / "export", tmp_path / "data", move=True)
    assert not (tmp_path / "data").exists()
