"""Package data, YAML only: the paper's result and efficiency tables, the demo recipes and Real-ESRGAN's x4plus
degradation."""
