"""Property-based CLI fuzzing: every command, fed generated option values (wrong types,
out-of-range and boundary numbers, NaN, huge numbers, empty strings, paths that do not
exist), ends with exit 0 and its results, or exit 2 and one line on stderr — never a
traceback, never a half-written result. Sizes of work (epochs, images, steps) are drawn
small, so the whole file stays within seconds."""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from defstab.cli.main import build_parser, main
from fixtures_formats import write_image_folder, write_train_test_tree

#: Files whose presence would make a failed run look finished.
RESULT_FILES = ("config.json", "sensitivity.csv", "smoothness.csv", "summary.csv",
                "section.json", "report.html", "history.csv")  # fmt: skip

#: Options that size the work: drawn from a few small, boundary and wrong values only.
WORK = {"images", "epochs", "steps", "per_class", "train_images", "test_images", "seeds",
        "attack_steps", "attack_restarts", "batch_size", "worst_shift", "window", "bins",
        "size", "image_size", "crop_size", "source_size", "pairs_per_batch", "grid",
        "num_classes", "in_channels", "width"}  # fmt: skip
SMALL = st.sampled_from(["-1", "0", "1", "2", "3", "0.5", "nan", "x", ""])
NUMBER = st.one_of(
    st.integers(-3, 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "x", "1e400", "-0", "0x10"]),
)
TEXT = st.sampled_from(["", "x", "/nonexistent/file", "folder:/nonexistent", "a,b", "-1", "nan"])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    imgs = write_image_folder(root / "imgs", per_class=2, size=(32, 32))
    write_train_test_tree(root / "tree", per_class=2)
    # something to report on
    assert main(["smoothness", "--model", "vgg_cifar_maxpool", "--width", "0.125",
                 "--out", str(root / "reportable" / "smoothness")]) == 0  # fmt: skip
    return root, imgs


def _subparser(command):
    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def _base(command, root, imgs) -> list[str]:
    """A small valid command line; generated options come after it and override it."""
    model = ["--model", "vgg_cifar_maxpool", "--width", "0.125"]
    data = ["--data", f"folder:{imgs}"]
    return {
        "measure": ["measure", *model, *data, "--images", "3", "--quiet", "--no-noise"],
        "translate": ["translate", *model, *data, "--images", "2", "--steps", "1", "--quiet"],
        "smoothness": ["smoothness", *model],
        "train": ["train", *model, "--data", f"folder:{root / 'tree'}", "--epochs", "1",
                  "--batch-size", "4", "--quiet"],
        "perturb": ["perturb", *model, *data, "--images", "1", "--preset", "cifar-p",
                    "--perturbations", "translate", "--quiet"],
        "spatial": ["spatial", *model, *data, "--images", "2", "--quiet"],
        "models": ["models"],
        "deform": ["deform", str(next(imgs.rglob("*.png"))), "--size", "32"],
        "report": ["report", str(root / "reportable")],
    }[command]  # fmt: skip


def _options(command):
    """(option, strategy of its value) for every option the command takes a value for."""
    out = []
    for a in _subparser(command)._actions:
        if not a.option_strings or a.dest in ("help", "out", "o", "device") or a.nargs == 0:
            continue
        if a.choices:
            strategy = st.one_of(st.sampled_from([str(c) for c in a.choices]), TEXT)
        elif a.dest in WORK:
            strategy = SMALL
        elif a.type in (int, float):
            strategy = NUMBER
        else:
            strategy = TEXT
        out.append((a.option_strings[0], strategy))
    return out


COMMANDS = ["measure", "translate", "perturb", "spatial", "smoothness", "train", "models",
            "deform", "report"]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_generated_options_end_cleanly(world, tmp_path_factory, command):
    root, imgs = world
    options = _options(command)

    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.lists(st.sampled_from(range(len(options))), max_size=3, unique=True), st.data())
    def check(chosen, data):
        out = tmp_path_factory.mktemp(command) / "out"
        extra = []
        for i in chosen:
            option, strategy = options[i]
            extra += [option, data.draw(strategy, label=option)]
        where = {
            "report": ["-o", str(out / "report.html")],
            "deform": ["-o", str(out / "deform.png")],
            "models": [],
        }.get(command, ["--out", str(out)])
        argv = [*_base(command, root, imgs), *extra, *where]
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                status = main(argv)
            except SystemExit as e:  # argparse's own refusals
                status = e.code
        text = err.getvalue()
        assert "Traceback" not in text, (argv, text)
        assert status in (0, 2), (argv, status, text)
        if status == 2:
            lines = [line for line in text.splitlines() if line.strip()]
            assert len(lines) == 1, (argv, text)
            if out.exists():
                assert not [f for f in RESULT_FILES if (out / f).exists()], (argv, text)
        # a failed command leaves nothing behind, not even a folder named in an option
        assert stray or not Path("/nonexistent").exists(), (argv, "created /nonexistent")
        shutil.rmtree(out, ignore_errors=True)

    stray = Path("/nonexistent").exists()  # a machine that has one: nothing to check
    check()
