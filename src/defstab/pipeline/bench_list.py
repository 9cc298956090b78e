"""``defstab bench --list``: every protocol of the card with its paper, metrics, unit,
direction and its settings per budget (as options of its own command). Imports no torch."""

from __future__ import annotations


def list_rows(side: int = 32) -> list[dict]:
    """One row per card protocol: its registry entry and, per budget, the options of its
    command that ask for the same request on images of ``side`` px."""
    from defstab.requests.bench import BUDGET_IMAGES, BUDGETS, CARD, card_requests
    from defstab.requests.fields import request_argv
    from defstab.requests.registry import PROTOCOLS

    rows = []
    for name, card in CARD.items():
        protocol = PROTOCOLS[card.protocol]
        row = {
            "protocol": name,
            "command": protocol.command,
            "source": protocol.paper,
            "metrics": card.metrics,
            "unit": card.unit,
            "direction": card.direction,
        }
        for budget in BUDGETS:
            (request,) = card_requests(budget, BUDGET_IMAGES[budget], 0, side, [name]).values()
            row[budget] = " ".join(request_argv(request)) or "(the command's defaults)"
        rows.append(row)
    return rows


def list_lines() -> list[str]:
    """What ``defstab bench --list`` prints."""
    lines = [
        "The card's protocols (--protocols NAME,…); settings per --budget for "
        "32-px images (paper: the whole split, at most 10,000 images; --images N "
        "overrides the count):"
    ]
    for row in list_rows():
        arrow = "lower" if row["direction"] == "lower" else "higher"
        lines += [
            f"{row['protocol']}  [defstab {row['command']}; {row['source']}]",
            f"    {row['metrics']}",
            f"    unit: {row['unit']}; {arrow} is more stable",
        ]
        lines += [f"    {budget:8s} {row[budget]}" for budget in ("quick", "standard", "paper")]
    return lines
