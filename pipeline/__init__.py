from pipeline import opencv_limits  # noqa: F401  first: OpenCV reads its pixel limit when it is loaded
