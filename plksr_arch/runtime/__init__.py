"""Where and how PLKSR runs: device and precision policy (`device`), accelerated routes such as the spectral PLKC
(`accel`), and measurement of time, memory and FLOPs (`measure`)."""
