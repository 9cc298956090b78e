"""How fast the command line answers: `defstab --version`, `--help`, `models`.

Goal (issue 13): --version ≤ 0.5 s and `models` ≤ 2 s on 2 CPU cores. Compared in the same
run with what the same commands cost when everything is imported up front (the previous
design: torch, torchvision and every command's options; reproduced here by importing them
before calling the CLI), and with `import torch` alone.

    python benchmarks/bench_cli_startup.py
"""

from __future__ import annotations

import subprocess
import sys

from _timing import best_time, print_table

EAGER = (
    "import torch, torchvision, defstab.models.zoo, defstab.cli.main as m; m.build_parser(None); "
)
COMMANDS = {
    "--version": ["--version"],
    "--help": ["--help"],
    "models": ["models"],
}


def wall(code: str) -> float:
    def run():
        subprocess.run([sys.executable, "-c", code], check=False, capture_output=True)

    return best_time(run, repeats=5, warmup=1)


def main() -> None:
    torch_alone = wall("import torch")
    rows = []
    for label, argv in COMMANDS.items():
        call = f"from defstab.cli.main import main; main({argv!r})"
        lazy = wall(call)
        eager = wall(EAGER + call)
        rows.append(
            {
                "command": f"defstab {label}",
                "now (s)": f"{lazy:.3f}",
                "eager imports (s)": f"{eager:.3f}",
                "speed-up": f"{eager / lazy:.1f}x",
                "vs import torch": f"{lazy / torch_alone:.2f}",
            }
        )
    # what listing cost before (and costs from Python): build every network at width 1
    # and count its FLOPs with a meta-device forward pass
    built = wall(
        "from defstab.models import create_model, list_models\n"
        "from defstab.models.summary import count_flops, count_parameters\n"
        "for n in list_models():\n"
        "    m = create_model(n); count_parameters(m)\n"
        "    count_flops(m, (m.in_channels, m.input_size, m.input_size))\n"
    )
    lazy_models = float(rows[-1]["now (s)"])
    rows.append(
        {
            "command": "build + count every model",
            "now (s)": "",
            "eager imports (s)": f"{built:.3f}",
            "speed-up": f"{built / lazy_models:.1f}x (vs `defstab models`)",
            "vs import torch": "",
        }
    )
    print(f"import torch alone: {torch_alone:.3f} s (best of 5)")
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
