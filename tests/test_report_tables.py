"""The report shows what the files hold: each command's table in the HTML equals its CSV
cell by cell (every column, also those that first appear in later rows), and each
section's caption says what its figure draws and which distance it used."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from defstab.cli.main import main
from defstab.io.tables import read_csv
from fixtures_formats import write_image_folder, write_train_test_tree


class Tables(HTMLParser):
    """Every <table> of a page as a list of rows (lists of cell texts), header first."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    data = write_image_folder(root / "imgs", per_class=3, size=(32, 32))
    write_train_test_tree(root / "tree", per_class=2)
    model = ["--model", "vgg_cifar_maxpool", "--width", "0.125"]
    out = root / "results"
    commands = {
        "measure": ["measure", *model, "--data", f"folder:{data}", "--images", "3",
                    "--distance", "euclidean", "--worst-case", "--attack-steps", "1",
                    "--lie-derivative", "rotate", "--lie-images", "2"],
        # three object sizes, then crop and a worst-shift row with columns of their own
        "translate": ["translate", *model, "--data", f"folder:{data}", "--images", "3",
                      "--steps", "2", "--protocol", "embed,crop", "--object-size", "16,20,24",
                      "--worst-shift", "2"],
        "smoothness": ["smoothness", *model],
        "train": ["train", *model, "--data", f"folder:{root / 'tree'}", "--epochs", "1",
                  "--batch-size", "4", "--device", "cpu"],
    }  # fmt: skip
    for name, argv in commands.items():
        quiet = ["--quiet"] if name != "smoothness" else []
        assert main([*argv, *quiet, "--out", str(out / name)]) == 0, name
    report = root / "report.html"
    assert main(["report", str(out), "-o", str(report)]) == 0
    parser = Tables()
    parser.feed(report.read_text())
    return out, report.read_text(), parser.tables


TABLES = {
    "measure": ("sensitivity.csv", None),
    "translate": ("summary.csv", None),
    "smoothness": ("smoothness.csv", None),
    "train": ("history.csv", ["step", "epoch", "train_loss", "train_acc", "test_acc"]),
}


@pytest.mark.parametrize("command", list(TABLES))
def test_each_report_table_equals_its_csv(results, command):
    out, _, tables = results
    name, columns = TABLES[command]
    rows = read_csv(out / command / name)
    expected_header = columns or list(rows[0])  # csv.DictReader: the file's whole header
    matches = [t for t in tables if t and t[0] == expected_header]
    assert matches, f"no table with the columns of {command}/{name}: {expected_header}"
    shown = matches[0][1:]
    assert len(shown) == len(rows)
    for row, cells in zip(rows, shown, strict=True):
        for column, cell in zip(expected_header, cells, strict=True):
            _same_cell(cell, row[column])


def _same_cell(shown: str, stored: str) -> None:
    """A report cell shows the CSV's value: the same text, or the same number to the 4
    significant digits the report prints."""
    try:
        number = float(stored)
    except ValueError:
        assert shown == stored
        return
    if number != number:
        assert shown.lower() == "nan"
    else:
        assert float(shown) == pytest.approx(number, rel=5e-4, abs=1e-12), (shown, stored)


def test_translate_rows_are_told_apart_and_worst_shift_keeps_its_columns(results):
    out, _, tables = results
    header = list(read_csv(out / "translate" / "summary.csv")[0])
    assert {"object_size", "background", "fraction_flipped"} <= set(header)
    table = next(t for t in tables if t and t[0] == header)
    keyed = [tuple(row[header.index(c)] for c in ("protocol", "object_size")) for row in table[1:]]
    assert len(set(keyed)) == len(keyed) == 5  # embed ×3 sizes, crop, the worst-shift row
    worst = table[-1]
    assert worst[header.index("fraction_flipped")] != ""


def test_captions_say_what_is_drawn(results):
    _, html, _ = results
    assert "± 2 standard errors of the mean over the 3 images" in html
    assert "euclidean distance" in html
    assert "±2 std over seeds" not in html  # nothing here has seeds
    assert "None" not in html
    made_by = html.split("<p>Made by ", 1)[1].split("</p>", 1)[0]
    assert "torch " in made_by and "defstab " in made_by  # versions of command-only reports


def test_inline_tables_show_the_union_of_columns():
    from defstab.plotting.report import _table

    parser = Tables()
    parser.feed(_table([{"a": 1.23456, "b": None}, {"a": 2, "c": "x"}]))
    assert parser.tables == [[["a", "b", "c"], ["1.235", "", ""], ["2", "", "x"]]]


def documented_columns() -> dict[tuple[str, str], list[str]]:
    """{(command, file): columns} from docs/reference/outputs.md, in the order listed
    (option names and patterns such as ``smooth:<conv>`` left out)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "reference" / "outputs.md").read_text()
    out, command = {}, None
    for line in text.splitlines():
        if line.startswith("## `defstab "):
            command = line.split("`defstab ")[1].rstrip("`")
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if command and len(cells) == 2 and cells[0].startswith("`") and cells[0].endswith(".csv`"):
            names = re.findall(r"`([^`]+)`", cells[1])
            out[(command, cells[0].strip("`"))] = [
                n for n in names if "--" not in n and "<" not in n and " " not in n
            ]
    return out


@pytest.mark.parametrize(
    "command, name",
    [("measure", "sensitivity.csv"), ("measure", "per_image.csv"), ("measure", "lie.csv"),
     ("measure", "lie_layers.csv"), ("translate", "summary.csv"),
     ("translate", "per_step.csv"), ("translate", "worst_shift.csv"),
     ("smoothness", "smoothness.csv"), ("train", "history.csv")],
)  # fmt: skip
def test_output_files_page_lists_the_columns_written(results, command, name):
    """docs/reference/outputs.md names every column a command writes, in its order."""
    out, _, _ = results
    written = [c for c in read_csv(out / command / name)[0]  # patterns: documented as lie_<t>
               if not c.startswith(("smooth:", "sens:", "lie_rotate"))]  # fmt: skip
    documented = documented_columns()[(command, name)]
    assert [c for c in documented if c in written] == written, (written, documented)
