"""BasicSR's own test suite (its repository's tests/test_data, test_losses, test_metrics, test_archs) run twice: with
only the torchvision alias BasicSR 1.4.2 needs, and with `import plksr_arch` first. Prints each run's totals and
every test that passes without us and not with us (a regression); exits 1 when there is one.

    python benchmarks/basicsr_own_tests.py --basicsr PATH [--cuda-shim]

PATH is a checkout of XPixelGroup/BasicSR at v1.4.2 (`git clone -b v1.4.2 --depth 1
https://github.com/XPixelGroup/BasicSR`). Its paired/single dataset tests read tests/data/{gt,lq}/*.png, which the
repository ignores; they are written from the LMDBs beside them (each value is the PNG file). `--cuda-shim` makes
`.cuda()` a no-op in both runs, so the arch tests (which call it) run on a CPU.

Each run is a pytest process with this file as a plugin (`-p basicsr_own_tests`), which sets its mode up before any
test imports basicsr, and checks at the end that the mode held (no plksr_arch in the alias run).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

SUITES = ("tests/test_data", "tests/test_losses", "tests/test_metrics", "tests/test_archs")
MODES = ("alias", "plksr")
JUNIT = {"failure": "failed", "error": "error", "skipped": "skipped"}  # a test case's child element -> outcome


def _set_up_mode() -> None:
    """As a pytest plugin: the alias alone (`alias`), or `import plksr_arch` (`plksr`); optionally the CUDA shim."""
    mode = os.environ["PLKSR_BASICSR_MODE"]
    if "basicsr" in sys.modules:
        raise RuntimeError("basicsr was imported before the mode was set up")
    if mode == "plksr":
        import plksr_arch  # noqa: F401
    else:
        import torchvision.transforms._functional_tensor as successor

        sys.modules["torchvision.transforms.functional_tensor"] = successor
    if os.environ.get("PLKSR_BASICSR_CUDA_SHIM"):
        import torch

        torch.Tensor.cuda = lambda self, *args, **kwargs: self
        torch.nn.Module.cuda = lambda self, *args, **kwargs: self


def pytest_configure(config) -> None:  # noqa: ANN001  (pytest's hook)
    _set_up_mode()


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ANN001  (pytest's hook)
    ours = "plksr_arch" in sys.modules
    if ours != (os.environ["PLKSR_BASICSR_MODE"] == "plksr"):
        sys.stderr.write(f"mode {os.environ['PLKSR_BASICSR_MODE']} did not hold (plksr_arch imported: {ours})\n")
        session.exitstatus = 3


def write_test_images(data: Path) -> None:
    """tests/data/{gt,lq}/<key>.png from tests/data/{gt,lq}.lmdb (the values are PNG files)."""
    import lmdb

    for part in ("gt", "lq"):
        (data / part).mkdir(exist_ok=True)
        env = lmdb.open(str(data / f"{part}.lmdb"), readonly=True, lock=False)
        with env.begin() as txn:
            for key, value in txn.cursor():
                (data / part / f"{key.decode()}.png").write_bytes(bytes(value))
        env.close()


def run(basicsr: Path, mode: str, cuda_shim: bool, out: Path) -> dict[str, str]:
    """{test id: passed | failed | error | skipped} of one pytest run of SUITES in `basicsr`."""
    report = out / f"{mode}.xml"
    env = {**os.environ, "PLKSR_BASICSR_MODE": mode, "PYTHONPATH": str(Path(__file__).parent)}
    if cuda_shim:
        env["PLKSR_BASICSR_CUDA_SHIM"] = "1"
    command = [sys.executable, "-m", "pytest", "-c", os.devnull, "--rootdir", str(basicsr), "-p", "basicsr_own_tests"]
    command += ["-p", "no:cacheprovider", "-q", f"--junitxml={report}", *SUITES]
    proc = subprocess.run(command, cwd=basicsr, env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 1) or not report.is_file():
        raise SystemExit(f"{mode} run failed (status {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        kinds = [JUNIT[child.tag] for child in case if child.tag in JUNIT]
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = kinds[0] if kinds else "passed"
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--basicsr", type=Path, required=True, help="a checkout of XPixelGroup/BasicSR at v1.4.2")
    parser.add_argument("--cuda-shim", action="store_true", help="make .cuda() a no-op in both runs")
    args = parser.parse_args()
    basicsr = args.basicsr.resolve()
    if not (basicsr / "tests" / "test_data").is_dir():
        parser.error(f"--basicsr {basicsr}: no tests/test_data (a BasicSR checkout at v1.4.2 is expected)")
    write_test_images(basicsr / "tests" / "data")
    with tempfile.TemporaryDirectory() as tmp:
        results = {mode: run(basicsr, mode, args.cuda_shim, Path(tmp)) for mode in MODES}
    for mode, outcomes in results.items():
        counts = {kind: list(outcomes.values()).count(kind) for kind in ("passed", "failed", "error", "skipped")}
        print(f"{mode}: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()) + f" of {len(outcomes)}")
    alias, plksr = results["alias"], results["plksr"]
    regressions = [t for t, outcome in alias.items() if outcome == "passed" and plksr.get(t) != "passed"]
    for test in regressions:
        print(f"regression: {test} ({plksr.get(test, 'missing')} with plksr_arch)")
    print(f"{len(regressions)} regression(s)" + (" (--cuda-shim)" if args.cuda_shim else ""))
    return 1 if regressions else 0


if __name__ == "__main__":
    raise SystemExit(main())
