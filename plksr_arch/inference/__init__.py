"""Running a trained network: self-ensemble and tiles (`tiles`), `Upscaler` (`upscaler`), folders with overlapped
I/O (`folders`), and videos in one streaming pass (`video`, with its encoding rules in `video_formats`)."""
