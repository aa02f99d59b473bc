"""`python -m plksr_arch.train -opt X.yml [...]`: the same as `plksr train`
(the pipeline is `training.train_pipeline`)."""

import sys

from plksr_arch.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", *sys.argv[1:]]))
