"""Startup: `import plksr_arch` and the `plksr` command's parsing import neither torch nor basicsr; `plksr infer`
imports what inference needs and not basicsr; registration still happens as soon as basicsr is imported."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from .conftest import TINY_NET, run_python

PROBE = "import sys; print(sorted(m for m in ('torch', 'basicsr', 'cv2') if m in sys.modules))"


def test_import_and_help_and_usage_errors_load_no_torch() -> None:
    code = (
        "import plksr_arch\n"
        "from plksr_arch.cli import main\n"
        "for argv in (['--help'], ['infer', '--help'], ['demo', '--scale', '5'], ['nope']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exit:\n"
        "        print('exit', argv[0], exit.code)\n" + PROBE
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    exits = [line for line in proc.stdout.splitlines() if line.startswith("exit ")]
    assert exits == ["exit --help 0", "exit infer 0", "exit demo 2", "exit nope 2"]
    assert proc.stdout.splitlines()[-1] == "[]"
    assert "invalid choice: 5" in proc.stderr


def test_infer_does_not_import_basicsr(tmp_path: Path) -> None:
    from plksr_arch import PLKSR

    net = PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}, upscaling_factor=2)
    torch.save({"params": net.state_dict()}, tmp_path / "w.pth")
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((12, 12, 3), np.uint8))
    code = "from plksr_arch.cli import main\nprint(main(['infer', 'w.pth', 'a.png', '-o', 'out']))\n" + PROBE
    proc = run_python(code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-2:] == ["0", "['cv2', 'torch']"]
    assert cv2.imread(str(tmp_path / "out" / "a.png")).shape == (24, 24, 3)


def test_basicsr_imported_later_or_earlier_gets_the_registrations() -> None:
    """Whichever module is imported first (basicsr, or one of ours that subclasses its classes), our names are
    registered and BasicSR's keep their own classes."""
    check = (
        "from basicsr.utils.registry import ARCH_REGISTRY as A, MODEL_REGISTRY as M, DATASET_REGISTRY as D\n"
        "print(A.get('PLKSR').__name__, M.get('PLKSRRealESRGANModel').__name__, D.get('PLKSRRealESRGANDataset')"
        ".__name__, D.get('PairedImageDataset').__module__, 'ESRModel' in M)"
    )
    firsts = (
        "import plksr_arch\nimport basicsr\n",
        "import sys, torchvision.transforms._functional_tensor as ft\n"
        "sys.modules['torchvision.transforms.functional_tensor'] = ft\nimport basicsr\nimport plksr_arch\n",
        "import plksr_arch.training.models.plksr_model\n",
        "import plksr_arch.training.datasets.realesrgan\n",
        "import plksr_arch.training.models.losses\n",
    )
    for first in firsts:
        proc = run_python(first + check)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [
            "PLKSR",
            "PLKSRRealESRGANModel",
            "PLKSRRealESRGANDataset",
            "basicsr.data.paired_image_dataset",
            "False",
        ], first
