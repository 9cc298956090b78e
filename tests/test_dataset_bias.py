"""Box statistics from real annotation formats (VOC/ILSVRC XML, COCO JSON) written here,
against hand-computed values; uniform placement against its closed form; the CLI."""

import json
import math

import numpy as np
import pytest

from defstab.cli.main import main
from defstab.data.boxes import (
    centre_histogram,
    read_boxes,
    statistics,
    uniform_placement,
)
from defstab.io.tables import read_csv


def voc_xml(path, width, height, objects):
    """A Pascal VOC annotation; objects: (name, (xmin, ymin, xmax, ymax) or None)."""
    parts = [f"<annotation><filename>{path.stem}.jpg</filename><size><width>{width}</width>"
             f"<height>{height}</height><depth>3</depth></size>"]  # fmt: skip
    for name, box in objects:
        inner = f"<name>{name}</name><difficult>0</difficult>"
        if box is not None:
            inner += (
                "<bndbox>"
                + "".join(
                    f"<{t}>{v}</{t}>"
                    for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True)
                )
                + "</bndbox>"
            )
        parts.append(f"<object>{inner}</object>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(parts) + "</annotation>")


@pytest.fixture
def voc(tmp_path):
    root = tmp_path / "VOC" / "Annotations"
    # 1-based inclusive: [xmin − 1, xmax] × [ymin − 1, ymax] in continuous coordinates
    voc_xml(root / "a.xml", 100, 50, [("cat", (1, 1, 50, 25)), ("dog", (51, 26, 100, 50))])
    voc_xml(root / "sub" / "b.xml", 200, 200, [
        ("cat", (91, 91, 110, 110)),  # [90, 110]²: centre (0.5, 0.5), size 0.01
        ("bird", (181, 1, 220, 20)),  # leaves the image: clipped to [180, 200] × [0, 20]
        ("person", None),  # an object without a box (ILSVRC lists some): skipped
    ])  # fmt: skip
    return tmp_path / "VOC"


HAND_CX = [0.25, 0.75, 0.5, 0.95]
HAND_CY = [0.25, 0.75, 0.5, 0.05]
HAND_SIZE = [0.25, 0.25, 0.01, 0.01]


def test_voc_boxes_by_hand(voc):
    boxes = read_boxes(f"voc:{voc}")
    np.testing.assert_allclose(boxes.centres[:, 0], HAND_CX)
    np.testing.assert_allclose(boxes.centres[:, 1], HAND_CY)
    np.testing.assert_allclose(boxes.sizes, HAND_SIZE)
    assert boxes.labels.tolist() == ["cat", "dog", "cat", "bird"]
    s = statistics(boxes)
    assert s["boxes"] == 4 and s["images"] == 2
    assert s["centre_x_mean"] == pytest.approx(2.45 / 4)
    assert s["centre_y_mean"] == pytest.approx(1.55 / 4)
    assert s["centre_x_std"] == pytest.approx(np.std(HAND_CX))
    assert s["size_median"] == pytest.approx(0.13)  # halfway between 0.01 and 0.25
    d = [0.25 * math.sqrt(2), 0.25 * math.sqrt(2), 0.0, 0.45 * math.sqrt(2)]
    assert s["centre_distance_mean"] == pytest.approx(sum(d) / 4)
    assert s["central_quarter_fraction"] == pytest.approx(0.75)  # all but the bird
    # bins of 1/4: (0.25, 0.25) → row 1, col 1; (0.75, 0.75) → 3, 3; (0.5, 0.5) → 2, 2;
    # (0.95, 0.05) → row 0, col 3
    expected = np.zeros((4, 4))
    for r, c in ((1, 1), (3, 3), (2, 2), (0, 3)):
        expected[r, c] += 0.25
    np.testing.assert_allclose(centre_histogram(boxes, 4), expected)


def test_coco_boxes_by_hand(tmp_path):
    coco = {
        "images": [{"id": 1, "width": 640, "height": 480}, {"id": 7, "width": 100, "height": 100}],
        "annotations": [
            {"id": 1, "image_id": 1, "bbox": [0, 0, 320, 240], "category_id": 3, "iscrowd": 0},
            {"id": 2, "image_id": 7, "bbox": [40, 40, 20, 20], "category_id": 1, "iscrowd": 0},
            # a crowd's box covers a group of people, not one object: left out
            {"id": 3, "image_id": 7, "bbox": [0, 0, 90, 90], "category_id": 1, "iscrowd": 1},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
    }
    path = tmp_path / "instances_val.json"
    path.write_text(json.dumps(coco))
    boxes = read_boxes(str(path))  # a .json without prefix is COCO
    np.testing.assert_allclose(boxes.centres, [[0.25, 0.25], [0.5, 0.5]])
    np.testing.assert_allclose(boxes.sizes, [0.25, 0.04])
    assert boxes.labels.tolist() == ["car", "person"] and boxes.images.tolist() == ["1", "7"]


def test_uniform_placement_matches_its_closed_form():
    from scipy import stats as sps

    from defstab.data.boxes import Boxes

    n = 20000
    # boxes 0.2 of the image's side: centres uniform on [0.1, 0.9] on each axis
    w = np.full(n, 500.0)
    one = np.zeros(n)
    boxes = Boxes(one + 200, one + 200, one + 300, one + 300, w, w,
                  np.array(["x"] * n), np.arange(n).astype(str), "made up")  # fmt: skip
    u = uniform_placement(boxes, seed=3)
    assert (u.x0 >= 0).all() and (u.x1 <= u.width).all() and (u.y1 <= u.height).all()
    np.testing.assert_allclose(u.sizes, boxes.sizes)  # sizes kept
    for axis in (0, 1):
        p = sps.kstest(u.centres[:, axis], sps.uniform(0.1, 0.8).cdf).pvalue
        assert p > 1e-3
    frac = statistics(u)["central_quarter_fraction"]
    expected = (0.5 / 0.8) ** 2  # the central quarter's share of the reachable square
    assert abs(frac - expected) < 4 * math.sqrt(expected * (1 - expected) / n)
    assert np.array_equal(uniform_placement(boxes, seed=3).x0, u.x0)  # seeded
    assert not np.array_equal(uniform_placement(boxes, seed=4).x0, u.x0)


def test_dataset_bias_cli(voc, tmp_path, capsys):
    out = tmp_path / "bias"
    assert main(["dataset-bias", "--data", f"voc:{voc}", "--bins", "8", "--out", str(out)]) == 0
    summary = {r["statistic"]: r for r in read_csv(out / "summary.csv")}
    assert float(summary["central_quarter_fraction"]["data"]) == pytest.approx(0.75)
    assert float(summary["size_median"]["uniform"]) == pytest.approx(0.13)  # same sizes
    assert len(read_csv(out / "boxes.csv")) == 4
    assert (out / "dataset_bias.png").stat().st_size > 10000
    section = json.loads((out / "section.json").read_text())
    assert section["figures"] == ["dataset_bias.png"]
    assert "centres in the central quarter" in capsys.readouterr().out
    # the report picks it up
    assert main(["report", str(out), "-o", str(tmp_path / "r.html")]) == 0
    assert "Data set bias" in (tmp_path / "r.html").read_text()


def test_dataset_bias_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.xml").write_text("<annotation><size><width>10")
    cases = [
        (["--data", f"voc:{bad}"], "x.xml is not readable XML"),
        (["--data", f"voc:{tmp_path / 'missing'}"], "does not exist"),
        (["--data", f"voc:{tmp_path}/empty", "--bins", "1"], "--bins"),
    ]
    (tmp_path / "c.json").write_text(json.dumps({"images": [], "annotations": [{"bbox": [0]}]}))
    cases.append((["--data", f"coco:{tmp_path / 'c.json'}"], "is not four / two numbers"))
    no_id = {"images": [], "annotations": [{"bbox": [0, 0, 1, 1]}]}
    (tmp_path / "d.json").write_text(json.dumps(no_id))
    cases.append((["--data", f"coco:{tmp_path / 'd.json'}"], "lacks 'image_id'"))
    (tmp_path / "nobox.json").write_text(json.dumps({"images": [], "annotations": []}))
    cases.append((["--data", str(tmp_path / "nobox.json")], "holds no bounding boxes"))
    for argv, message in cases:
        assert main(["dataset-bias", *argv, "--out", str(tmp_path / "o")]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "summary.csv").exists()
