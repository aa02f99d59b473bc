"""`plksr bench`: the paper's efficiency protocol (HD output, median of timed runs, peak memory) for our networks
and their peers."""
