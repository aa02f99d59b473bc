"""Write the generated parts of docs/ from the code: `python tools/generate_docs.py` (or `--check`: exit 1 naming each
stale part, as tests/test_docs.py does).

A generated part sits between `<!-- begin generated: NAME -->` and `<!-- end generated: NAME -->`:
- `options` (docs/options.md): every option key our models and datasets declare (`training.keys.OptionKeys`), and
  the keys of BasicSR's classes that our validation knows (`training.basicsr_keys`);
- `paper-tables` (docs/testing.md): the paper's PSNR/SSIM rows, latency and memory (`resources/paper_*.yml`) with the
  option files that reproduce each row;
- `faults` (docs/faults.md): the cases of tests/faults as pytest collects them, and their count. The `fault` and
  `outcome` columns are prose kept from the page for each case that still exists; a new case gets empty cells.
"""

from __future__ import annotations

import argparse
import functools
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"


def _block(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- begin generated: {name} -->\n)(.*?)(<!-- end generated: {name} -->)", re.S)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def options_block(_: str) -> str:
    from plksr_arch.training import basicsr_keys
    from plksr_arch.training.keys import type_name
    from plksr_arch.training.options import our_option_owners

    owners = our_option_owners()
    lines = [
        "A default of `needed` marks a key without a default that the class's rules require where they apply (the",
        "degradation keys: with `high_order_degradation: true`).",
        "",
    ]
    for owner, groups in owners.items():
        summary = " ".join((owner.__doc__ or "").split("\n\n")[0].split())
        lines += [f"### `{owner.__name__}`", "", summary, ""]
        bases = [f"`{base.__name__}`" for base in owner.__mro__[1:] if base in owners]
        if bases:
            lines += [f"It also reads the keys of {', '.join(bases)}.", ""]
        lines += ["| key | type | default | what it does |", "| --- | --- | --- | --- |"]
        for group in groups:
            for d in group.declared():
                where = {"": "", "dataset": "datasets.<phase>."}.get(d.section, f"{d.section}.")
                default = "needed" if d.needed else f"`{d.default!r}`"
                lines.append(f"| `{where}{d.name}` | {type_name(d.types)} | {default} | {_cell(d.doc)} |")
        lines.append("")
    lines += [
        "### BasicSR's own keys",
        "",
        "What BasicSR 1.4.2's SRModel and its training/test pipelines read (types as validated; BasicSR's",
        "documentation describes them), and the parts its GAN models add:",
        "",
        "| key | type |",
        "| --- | --- |",
    ]
    for path, kinds in basicsr_keys.flat_schema():
        lines.append(f"| `{path}` | {type_name(kinds)} |")
    return "\n".join(lines) + "\n"


def paper_block(_: str) -> str:
    from plksr_arch.evaluation import paper

    header = ["model", "training", "scale", *paper.DATASETS, "latency / memory (paper)", "option files"]
    tables = []
    for variant in ("PLKSR", "PLKSR-tiny"):
        rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for train in ("DIV2K", "DF2K"):
            for scale in (2, 3, 4):
                key = f"{variant}_{train}_x{scale}"
                entry, eff = paper.results()[key], paper.efficiency_of(key)
                cells = [f"{entry[d]['psnr']:.2f}/{entry[d]['ssim']:.4f}" for d in paper.DATASETS]
                files = [f"options/train/train_{key}.yml", f"options/test/test_{key}.yml"]
                missing = [f for f in files if not (REPO / f).is_file()]
                if missing:
                    raise SystemExit(f"generate_docs: {missing[0]} does not exist (paper row {key})")
                latency = f"{eff['latency_ms']} ms / {eff['memory_mb']} MB"
                named = ", ".join(f"`{Path(f).name}`" for f in files)
                rows.append(f"| {variant} | {train} | x{scale} | {' | '.join(cells)} | {latency} | {named} |")
        tables.append("\n".join(rows) + "\n")
    return "\n".join(tables)


@functools.cache
def fault_cases() -> list[str]:
    """The ids of tests/faults, as pytest collects them, relative to tests/faults/ (collected once a process)."""
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0", "-p", "no:cacheprovider", "tests/faults"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout.splitlines()
    return [line.removeprefix("tests/faults/") for line in collected if line.startswith("tests/faults/")]


def faults_block(current: str) -> str:
    kept = {}
    for line in current.splitlines():
        match = re.match(r"^\| `(test_\w+\.py::[^`]+)` \| (.*) \| (.*) \|$", line)
        if match:
            kept[match.group(1)] = (match.group(2), match.group(3))
    cases = fault_cases()
    rows = [f"**{len(cases)} cases**", "", "| case (`tests/faults/`) | fault | outcome |", "| --- | --- | --- |"]
    rows += [f"| `{case}` | {' | '.join(kept.get(case, ('', '')))} |" for case in cases]
    return "\n".join(rows) + "\n"


PARTS: dict[str, tuple[str, Callable[[str], str]]] = {
    "options": ("options.md", options_block),
    "paper-tables": ("testing.md", paper_block),
    "faults": ("faults.md", faults_block),
}


def generate(names: list[str] | None = None) -> dict[Path, tuple[str, str]]:
    """{page: (current text, generated text)} for the named parts (all by default)."""
    pages: dict[Path, tuple[str, str]] = {}
    for name in names or list(PARTS):
        page, make = PARTS[name]
        path = DOCS / page
        current, text = pages.get(path, (path.read_text(encoding="utf-8"),) * 2)
        match = _block(name).search(text)
        if match is None:
            raise SystemExit(f"generate_docs: {path}: no '<!-- begin generated: {name} -->' ... end block")
        text = text[: match.start(2)] + make(match.group(2)) + text[match.end(2) :]
        pages[path] = (current, text)
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a generated part is stale")
    parser.add_argument(
        "parts", nargs="*", metavar="PART", help=f"parts to generate: {', '.join(PARTS)} (default: all)"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.parts if name not in PARTS]
    if unknown:
        parser.error(f"unknown part {unknown[0]!r}: expected one of {', '.join(PARTS)}")
    stale = []
    for path, (current, text) in generate(args.parts or None).items():
        if text != current:
            stale.append(path.relative_to(REPO))
            if not args.check:
                path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{path}: {'stale: run python tools/generate_docs.py' if args.check else 'written'}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
