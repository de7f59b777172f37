"""OpenCV's own pixel limit, set for the whole process before OpenCV is loaded.

OpenCV reads OPENCV_IO_MAX_IMAGE_PIXELS once, when its library is loaded (`import cv2`); its default
is 2^30 pixels, 3 GB as colour. The `pipeline` package imports this module first, so every process
that decodes photos (the page, colorize, the Beam job and its worker processes, which import the
package to unpickle the job's steps) has the limit before anything imports cv2. It is the last guard,
behind the header check of `pipeline.images`.
"""

import os

MAX_PIXELS = 200_000_000
os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(MAX_PIXELS)
