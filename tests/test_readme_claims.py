"""Every time the README claims a command takes says where it was measured: the machine (cores,
CPU, GPU) and its load (idle, busy, shared, load average)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"

#: A duration: "36 s", "2 min 36 s", "≈ 15 min", "80 minutes", "2 h" (not a clip length).
DURATION = re.compile(
    r"(?<![\w.])(?:~|≈ ?)?\d[\d,.]*(?:–\d[\d,.]*)? ?(?:s|seconds|min|minutes|h|hours)\b"
    r"(?! clips?\b)(?! each\b)"
)
MACHINE = re.compile(r"\bcores?\b|\bCPU\b|\bGPU\b|\bmachine\b", re.IGNORECASE)
LOAD = re.compile(r"\bload\b|\bidle\b|\bbusy\b|\bshared\b|other jobs", re.IGNORECASE)


def _blocks(text: str) -> list[str]:
    """Paragraphs; a table goes with the paragraph before it (which states its conditions)."""
    blocks: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        if block.lstrip().startswith("|") and blocks:
            blocks[-1] += "\n" + block
        else:
            blocks.append(block)
    return blocks


def _claims(block: str) -> list[str]:
    # the preset table's clip-length cells ("| 2 s |") are lengths, not times
    block = re.sub(r"\|\s*\d+ s\s*(?=\|)", "|", block)
    return DURATION.findall(block)


def test_every_time_claim_names_the_machine_and_its_load():
    bad = [
        f"{claims}: {block.strip()[:120]!r}"
        for block in _blocks(README.read_text())
        if (claims := _claims(block)) and not (MACHINE.search(block) and LOAD.search(block))
    ]
    assert not bad, bad


def test_the_rule_finds_time_claims_and_their_conditions():
    assert _claims("the demo took 2 min 36 s") == ["2 min", "36 s"]
    assert _claims("| `mini` | fan | 00 | 2 s | 40 |") == []
    assert _claims("width 0.25, 3 s clips") == []
    block = "took 96 s on an idle 2-core machine"
    assert _claims(block) and MACHINE.search(block) and LOAD.search(block)
    assert not LOAD.search("took 96 s on the 2-core machine")
