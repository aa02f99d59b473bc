"""docs/: the generated parts are what `tools/generate_docs.py` makes from the code today (option declarations,
the paper's tables, the fault suite's cases), and every relative link between the pages resolves."""

from __future__ import annotations

import functools
import importlib.util
import re

import pytest

from .conftest import REPO


@functools.cache
def _generator():
    spec = importlib.util.spec_from_file_location("generate_docs", REPO / "tools" / "generate_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("part", ["options", "paper-tables", "faults"])
def test_generated_part_is_up_to_date(part: str) -> None:
    ((path, (current, generated)),) = _generator().generate([part]).items()
    assert generated == current, f"{path.relative_to(REPO)} is stale: run python tools/generate_docs.py {part}"


def test_the_option_reference_lists_every_declared_key() -> None:
    from plksr_arch.training.options import our_option_owners

    owners = our_option_owners()
    names = {cls.__name__ for cls in owners}
    assert names == {
        "PLKSRModel",
        "PLKSRRealESRNetModel",
        "PLKSRRealESRGANModel",
        "PLKSRRealESRGANDataset",
    }
    block = _generator().options_block("")
    for groups in owners.values():
        for group in groups:
            for declared in group.declared():
                assert f"{declared.name}` |" in block


def test_the_fault_table_has_one_row_per_case() -> None:
    generator = _generator()
    cases = generator.fault_cases()
    block = generator.faults_block("")
    assert len(cases) == len(set(cases)) > 40
    assert block.startswith(f"**{len(cases)} cases**\n")
    assert re.findall(r"^\| `(test_\w+\.py::[^`]+)` \|", block, flags=re.MULTILINE) == cases


def test_relative_links_between_pages_resolve() -> None:
    pages = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert not broken, broken
