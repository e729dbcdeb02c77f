"""Every number the README's results tables quote matches its results file, to its printed digits.

The README's tables are parsed; each is either *sourced* -- mapped to the results file a named
command writes, every number of every value cell recomputed from that file and compared at the
precision it is printed with -- or listed in :data:`UNSOURCED` with the reason it has no results
file. A new table with numbers fails until it is one or the other.

* the bundled models' table: ``asdxai/bundled/training.json``
  (``python -m asdxai.bundled.train_bundled``);
* "The study's explanation, measured": ``docs/results/focus_claim_small_g6.csv``
  (``python figures/focus_claim.py``): mean ± std over the maps, the per-trial means, the
  paired Wilcoxon p (recomputed with the script's own functions);
* the demo's table: ``docs/results/demo_performance_small_g6.csv`` (``asdxai demo``'s
  ``performance.csv``);
* "Is it the masking?": ``docs/results/focus_factors_small_g6.csv``
  (``python figures/focus_factors.py``);
* "Nothing leaks, per machine type": ``docs/results/leakage_small_g6{,_section00}.json``
  (``asdxai bench leakage``);
* "Three detector families": ``docs/results/focus_families_small_g6.csv``
  (``python figures/focus_families.py``): mean ± std over the clips, the paired Wilcoxon p and
  the per-clip wins against the autoencoder.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = ROOT / "docs" / "results"
NUMBER = re.compile(r"[−+-]?\d+(?:\.\d+)?(?:e[−+-]?\d+)?")

#: Tables with numbers but no results file behind them (header start -> why).
UNSOURCED = {
    "| preset | machine types": "the presets' sizes (asdxai.data.synth.PRESETS), not a result",
    "| what | command | result |": "benchmarks, machine-dependent; no file kept",
    "| model | study AUC source | study AUC target | DCASE official score |": "the 3-seed run of "
    "docs/FIDELITY.md; no file kept (docs/results/small_g4_* hold a 5-trial run)",
}


def readme_tables() -> list[list[list[str]]]:
    """Every Markdown table of the README: a list of rows (header first, no rule row) of cells."""
    tables, current = [], []
    for line in [*README.read_text().splitlines(), ""]:
        if line.startswith("|"):
            if not set(line) <= set("|-: "):
                current.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    return tables


def _head(table: list[list[str]]) -> str:
    return "| " + " | ".join(table[0]) + " |"


def _table(header_start: str) -> list[list[str]]:
    found = [t for t in readme_tables() if _head(t).startswith(header_start)]
    assert len(found) == 1, f"README: expected one table starting {header_start!r}"
    return found[0]


def _numbers(cell: str) -> list[str]:
    return NUMBER.findall(cell)


def _printed_equal(printed: str, value: float) -> bool:
    """``value`` rounded to the digits of ``printed`` (decimals, or significant digits in
    scientific notation) is ``printed``."""
    text = printed.replace("−", "-")
    if "e" in text:
        sig = len(text.split("e")[0].lstrip("+-").replace(".", "")) - 1
        return float(f"{value:.{sig}e}") == float(text)
    decimals = len(text.split(".")[1]) if "." in text else 0
    return float(f"{value:.{decimals}f}") == float(text)


def check_cell(cell: str, expected: list[float], where: str) -> None:
    """Every number in ``cell`` matches ``expected`` (same count, same order)."""
    printed = _numbers(cell)
    assert len(printed) == len(expected), f"{where}: {cell!r} has {printed}, expected {expected}"
    for p, v in zip(printed, expected, strict=True):
        assert _printed_equal(p, v), f"{where}: README prints {p}, the results file gives {v!r}"


def _figures(name: str = "focus_claim"):
    """The figure script ``name`` as a module."""
    import importlib

    sys.path.insert(0, str(ROOT / "figures"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "figures"))


def _rows(name: str) -> list[dict]:
    with open(RESULTS / name, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        for k, v in r.items():
            try:
                r[k] = float(v)
            except ValueError:
                pass
    return rows


def test_every_readme_table_with_numbers_is_sourced_or_declared_unsourced():
    sourced = tuple(SOURCED)
    for table in readme_tables():
        head = _head(table)
        if not any(_numbers(" ".join(row[1:])) for row in table[1:]):
            continue  # no numbers in the value cells
        known = head.startswith(sourced) or head.startswith(tuple(UNSOURCED))
        assert known, f"README table {head!r}: map it to its results file or to UNSOURCED"


def check_bundled() -> None:
    bundled = ROOT / "asdxai" / "bundled"
    results = json.loads((bundled / "training.json").read_text())
    results["autoencoder"] = json.loads((bundled / "autoencoder.json").read_text())
    table = _table("| model | AUC source | AUC target | pAUC source | pAUC target |")
    assert len(table) - 1 == len(results)
    for row in table[1:]:
        name = re.match(r"`([^`]+)`", row[0]).group(1)
        keys = ("auc_source", "auc_target", "pauc_source", "pauc_target")
        for cell, key in zip(row[1:], keys, strict=True):
            check_cell(cell, [results[name][key]], f"bundled {name} {key}")


def check_focus_claim() -> None:
    fc = _figures()
    rows = _rows("focus_claim_small_g6.csv")
    measures = {"machine focus": "machine_focus", "machine contrast": "machine_contrast",
                "machine r beyond energy": "machine_partial_r", "event share": "event_share",
                "pixel AUC (anomaly mask)": "pixel_auc"}  # fmt: skip
    labels = {"anomalous": "anomaly", "normal": "normal"}
    table = _table("| measure | clips | SC-AdaCos, attribute classes | IC compactness, 1 class |")
    titles = [t for _, t in fc.MODELS]
    for row in table[1:]:
        m, label = measures[row[0]], labels[row[1]]
        per = fc.per_map([r for r in rows if r["label"] == label], m)
        for cell, key in zip(row[2:5], [*titles, fc.ENERGY], strict=True):
            mean, std, _ = fc.finite_stats(per[key].values())
            check_cell(cell, [mean, std], f"focus_claim {m} {label} {key}")
        check_cell(row[5], [fc.paired_p(per[titles[0]], per[titles[1]])], f"focus_claim {m} p")
        won = [float(v) for v in fc.wins(per[titles[0]], per[titles[1]]).split("/")]
        check_cell(row[6], won, f"focus_claim {m} wins")


def check_focus_factors() -> None:
    fc = _figures()
    rows = _rows("focus_factors_small_g6.csv")
    modes = {"separable": "separable", "time only": "time", "freq only": "freq"}
    fills = {"silence": ("silence",), "mean": ("mean",), "either": ("silence", "mean")}
    table = _table("| masks | fill | machine focus | p | machine correlation | p | pixel AUC | p |")
    titles = [t for _, t in fc.MODELS]
    for row in table[1:]:
        for fill in fills[row[1]]:
            sel = [r for r in rows if (r["mode"], r["fill"]) == (modes[row[0]], fill)]
            assert sel, f"focus_factors: no rows for {row[0]} / {fill}"
            cells = iter(row[2:])
            for m in ("machine_focus", "machine_correlation", "pixel_auc"):
                per = {t: {(r["machine"], r["clip"]): r[m] for r in sel if r["model"] == t}
                       for t in titles}  # fmt: skip
                means = [fc.finite_stats(per[t].values())[0] for t in titles]
                where = f"focus_factors {row[0]}/{fill} {m}"
                check_cell(next(cells), means, where)
                check_cell(next(cells), [fc.paired_p(per[titles[0]], per[titles[1]])], where)


#: README column -> measure of focus_families' rows.
FAMILY_MEASURES = {
    "machine focus": "machine_focus",
    "machine contrast": "machine_contrast",
    "machine r beyond energy": "machine_partial_r",
    "abs. r beyond energy": "machine_abs_partial_r",
    "event share": "event_share",
    "pixel AUC": "pixel_auc",
}


def _families() -> tuple:
    """(focus_claim, focus_families, {measure: per_map of focus_families' results file})."""
    fc, ff = _figures(), _figures("focus_families")
    rows = _rows("focus_families_small_g6.csv")
    per = {m: fc.per_map(rows, m, ff.FAMILIES) for m in FAMILY_MEASURES.values()}
    return fc, ff, per


def check_focus_families() -> None:
    fc, ff, per = _families()
    table = _table("| detector (signal domain) | machine focus |")
    assert [row[0] for row in table[1:]] == [*(t for _, t in ff.FAMILIES), fc.ENERGY]
    for row in table[1:]:
        for cell, head in zip(row[1:], table[0][1:], strict=True):
            values = per[FAMILY_MEASURES[head]][row[0]].values()
            check_cell(cell, list(fc.finite_stats(values)[:2]), f"focus_families {row[0]} {head}")


def check_focus_families_tests() -> None:
    fc, ff, per = _families()
    base = ff.FAMILIES[0][1]
    table = _table(f"| vs the {base} |")
    assert [row[0] for row in table[1:]] == [t for _, t in ff.FAMILIES[1:]]
    for row in table[1:]:
        for cell, head in zip(row[1:], table[0][1:], strict=True):
            mine, theirs = per[FAMILY_MEASURES[head]][row[0]], per[FAMILY_MEASURES[head]][base]
            won = [float(n) for n in fc.wins(mine, theirs).split("/")]
            check_cell(cell, [fc.paired_p(mine, theirs), *won], f"focus_families {row[0]} {head}")


def check_leakage() -> None:
    every = json.loads((RESULTS / "leakage_small_g6.json").read_text())
    section = json.loads((RESULTS / "leakage_small_g6_section00.json").read_text())
    table = _table("| machine type | trivial detector AUC |")
    assert [row[0] for row in table[1:]] == list(every)
    for row in table[1:]:
        m = row[0]
        expected = (every[m]["unsupervised"], section[m]["unsupervised"], every[m]["supervised"])
        for cell, value in zip(row[1:], expected, strict=True):
            check_cell(cell, [value], f"leakage {m}")


#: Tables with a results file behind them (header start -> the check).
def check_demo() -> None:
    with (RESULTS / "demo_performance_small_g6.csv").open() as fh:
        results = {r["model"]: r for r in csv.DictReader(fh)}
    table = _table("| model (dev-test, section 00 of 7 machine types")
    assert len(table) - 1 == len(results)
    for row in table[1:]:
        keys = ("auc_source", "auc_target", "pauc_source", "pauc_target")
        for cell, key in zip(row[1:], keys, strict=True):
            check_cell(cell, [float(results[row[0]][key])], f"demo {row[0]} {key}")


SOURCED = {
    "| model (dev-test, section 00 of 7 machine types": check_demo,
    "| model | AUC source | AUC target | pAUC source | pAUC target |": check_bundled,
    "| measure | clips | SC-AdaCos, attribute classes | IC compactness, 1 class |": (
        check_focus_claim
    ),
    "| masks | fill | machine focus | p | machine correlation | p | pixel AUC | p |": (
        check_focus_factors
    ),
    "| detector (signal domain) | machine focus |": check_focus_families,
    "| vs the DCASE autoencoder |": check_focus_families_tests,
    "| machine type | trivial detector AUC |": check_leakage,
}


@pytest.mark.parametrize("header", list(SOURCED))
def test_readme_numbers_match_their_results_files(header):
    SOURCED[header]()


def test_the_check_catches_a_drifted_number():
    assert _printed_equal("0.610", 0.6104) and _printed_equal("−0.21", -0.2149)
    assert _printed_equal("2e-5", 2.4e-05) and _printed_equal("0.10", 0.1)
    assert not _printed_equal("0.610", 0.6106) and not _printed_equal("2e-5", 2.6e-05)
    with pytest.raises(AssertionError):
        check_cell("0.861 ± 0.002", [0.861, 0.021], "drift")
    with pytest.raises(AssertionError):
        check_cell("0.861", [0.861, 0.002], "a number left out")


def test_the_bundled_models_show_the_studys_ordering():
    """The ordering the README states: SC-AdaCos above the one-class model by >= 0.15 AUC, in
    both domains over the 21 dev sections (train_bundled) and over both domains of the demo's
    seven sections (the demo's performance.csv)."""
    bundled = json.loads((ROOT / "asdxai" / "bundled" / "training.json").read_text())
    for key in ("auc_source", "auc_target"):
        gap = bundled["sc-adacos-attribute"][key] - bundled["compactness-none"][key]
        assert gap >= 0.15, f"bundled {key}: SC-AdaCos leads by {gap:.3f}"
    with (RESULTS / "demo_performance_small_g6.csv").open() as fh:
        demo = {r["model"]: float(r["auc_all"]) for r in csv.DictReader(fh)}
    gap = demo["SC-AdaCos, attribute classes"] - demo["IC compactness, 1 class"]
    assert gap >= 0.15, f"demo: SC-AdaCos leads by {gap:.3f}"


def test_the_rise_quality_table_matches_its_results_file():
    """The (indented) estimator table of the RISE section: ``bench rise --quality``'s JSON."""
    doc = json.loads((RESULTS / "rise_quality_small_g6_sc.json").read_text())
    summary = {e["variant"]: e for e in doc["summary"]}
    lines = [ln.strip() for ln in README.read_text().splitlines()
             if ln.startswith("  | ") and ln.count("|") == 6]  # fmt: skip
    head = next(i for i, ln in enumerate(lines) if ln.startswith("| estimator | median r at 1,000"))
    names = {"plain (study)": "plain", "centered (default for `grid` masks)": "centered",
             "cv (default)": "cv", "cv + latin-antithetic": "cv+latin-antithetic"}  # fmt: skip
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[head + 1:head + 5]]
    assert [names[r[0]] for r in rows] == list(summary)
    for row in rows:
        e = summary[names[row[0]]]
        check_cell(row[1], [e["median_r_at_1000"]], f"rise quality {row[0]}")
        for cell, key in ((row[2], "passes_r0.99"), (row[3], "passes_rc0.99")):
            value = float(str(e[key]).lstrip("> "))  # "> 3000": not reached within the maximum
            check_cell(cell.replace(",", ""), [value, e[f"{key}_reached"], e["maps"]], row[0])
        stop = [e["stop_passes_median"], e["stopped"], e["maps"], e["stop_r_median"]]
        check_cell(row[4].replace(",", ""), stop if e["stopped"] else [e["maps"]], row[0])


def test_the_one_class_quality_sentence_matches_its_results_file():
    """The RISE section's sentence on the one-class model: ``bench rise --quality``'s JSON."""
    doc = json.loads((RESULTS / "rise_quality_small_g6_oc.json").read_text())
    cv = next(e for e in doc["summary"] if e["variant"] == "cv")
    text = " ".join(README.read_text().split())
    start = text.index("On the one-class spectrogram model (same")
    sentence = text[start : text.index("true r of", start) + 16]
    sentence = sentence.replace("rise_quality_small_g6_oc.md", "").replace("0.99 in", "in")
    expected = [cv["maps"], doc["settings"]["ref_masks"],
                cv["median_r_at_1000"], 1000, cv["passes_r0.99"], cv["passes_r0.99_reached"],
                cv["maps"], cv["stop_passes_median"], cv["stopped"], cv["maps"],
                cv["stop_r_median"]]  # fmt: skip
    check_cell(sentence.replace(",", ""), expected, "one-class quality sentence")


def test_the_study_map_sentence_matches_its_results_file():
    """The RISE section's r of the references with the study's own 640,000-mask maps."""
    doc = json.loads((RESULTS / "rise_quality_small_g6_sc.json").read_text())
    studied = [r for r in doc["references"] if "r_study" in r]
    text = " ".join(README.read_text().split())
    start = text.index("640,000 masks, seed 98) correlates at r =")
    sentence = text[start + len("640,000 masks, seed 98)") : text.index("with them", start)]
    check_cell(sentence, [r["r_study"] for r in studied], "study-map sentence")
    assert all(r["study_masks"] == 640_000 for r in studied)
    cv = next(e for e in doc["study_summary"] if e["variant"] == "cv")
    start = text.index("Measured against the study's maps themselves")
    sentence = text[start : text.index("stopped)", start)].replace("0.99 from", "from")
    expected = [cv["median_r_at_1000"], 1000, cv["passes_r0.99"], cv["passes_r0.99_reached"],
                cv["maps"], doc["settings"]["max_passes"], cv["stop_r_median"],
                cv["stopped"], cv["maps"]]  # fmt: skip
    check_cell(sentence.replace(",", ""), expected, "r with the study's maps")


def test_the_rise_memory_row_matches_its_results_file():
    """The speed table's peak-memory row: ``/usr/bin/time -v``'s lines kept in the results file."""
    text = (RESULTS / "rise_memory_small.md").read_text()
    runs = re.findall(r"== n_masks (\d+).*?Maximum resident set size \(kbytes\): (\d+)", text,
                      flags=re.S)  # fmt: skip
    row = next(r for t in readme_tables() for r in t if r[0].startswith("RISE peak memory"))
    expected = []
    for n, kib in runs:
        expected += [int(kib) / 1024, int(n) // 1000]
    check_cell(row[2], expected, "RISE memory row")


def test_the_rise_speed_row_matches_its_results_files():
    """The speed table's RISE/bare row: ``bench rise``'s JSON, with and without the tuned
    malloc, and with ``--compile``."""
    runs = {stem: json.loads((RESULTS / f"rise_speed_small{stem}.json").read_text())["runs"]
            for stem in ("", "_default_malloc", "_compile")}  # fmt: skip
    row = next(r for t in readme_tables() for r in t if r[0].startswith("RISE/bare, the bundled"))
    tuned = runs[""]
    assert [r["estimator"] for r in tuned] == ["plain", "centered", "cv"]
    assert row[1].endswith(f"--batches {tuned[0]['n_masks'] // 100} --estimator plain centered cv`")
    expected = [r["ratio"] for r in tuned] + [r["asdxai"] for r in tuned]
    expected += [r["asdxai"] for r in runs["_default_malloc"]]
    expected += [r["asdxai"] for r in runs["_compile"]]
    check_cell(row[2].replace(",", ""), expected, "RISE speed row")
