import pipeline  # noqa: F401  first: it sets OpenCV's pixel limit, read when cv2 is loaded
