"""README's "Faults" section lists exactly the cases of tests/faults, with their count."""

from __future__ import annotations

import re
import subprocess
import sys

from ..conftest import REPO


def test_readme_lists_every_fault_case_and_the_count() -> None:
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0", "-p", "no:cacheprovider", "tests/faults"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.splitlines()
    cases = {line.removeprefix("tests/faults/") for line in collected if line.startswith("tests/faults/")}
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Faults: what a mistake gives", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `(test_\w+\.py::[^`]+)` \|", section, flags=re.MULTILINE)
    assert len(listed) == len(set(listed))
    assert set(listed) == cases
    assert f"**{len(cases)}\ncases**" in section or f"**{len(cases)} cases**" in section
