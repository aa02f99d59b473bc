"""Running a trained network: self-ensemble and tiles (`tiles`), `Upscaler` (`upscaler`) and folders with overlapped
I/O (`folders`)."""
