"""`python -m plksr_arch.test -opt X.yml [...]`: the same as `plksr test`
(the pipeline is `training.test_pipeline`)."""

import sys

from plksr_arch.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["test", *sys.argv[1:]]))
