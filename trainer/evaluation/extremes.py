"""The best and worst photos of a report by RGB PSNR, and the contact sheet that shows them."""

import heapq
import itertools

import numpy as np

from pipeline import color_tf
from trainer.evaluation import sheets
from trainer.evaluation.photo_sets import Origin


class Extremes:
    """The k photos with the lowest and the highest RGB PSNR seen so far.

    Memory stays flat: a kept photo's planes are copied out of their batch, since a view of one photo
    would keep the whole batch alive (about 1.6 GB for a batch of 256 at 200x200), and photos that
    are not kept are never copied.
    """

    def __init__(self, k: int):
        self.k, self.best, self.worst, self._order = k, [], [], itertools.count()

    def offer(self, psnr, lightness, ab_true, ab_pred, origins: list[Origin]) -> None:
        """One batch: per photo its RGB PSNR, planes (numpy, any layout of batch first) and Origin."""
        for index, (value, origin) in enumerate(zip(psnr, origins)):
            order = next(self._order)
            entries = [(heap, (key, order)) for heap, key in ((self.best, float(value)), (self.worst, -float(value)))
                       if len(heap) < self.k or (key, order) > heap[0][:2]]
            if not entries:
                continue
            item = (origin, tuple(np.array(plane[index]) for plane in (lightness, ab_true, ab_pred)))
            for heap, (key, order) in entries:
                (heapq.heappush if len(heap) < self.k else heapq.heapreplace)(heap, (key, order, item))

    def ranked(self) -> list[tuple[str, tuple]]:
        """(caption, (lightness, ab_true, ab_pred)): the best photos, best first, then the worst, worst first."""
        best = [("best", value, item) for value, _, item in sorted(self.best, reverse=True)]
        worst = [("worst", value, item) for value, _, item in sorted((-v, o, i) for v, o, i in self.worst)]
        return [(f"{which}, RGB PSNR {value:.1f} dB: {origin.caption()}", planes)
                for which, value, (origin, planes) in best + worst]


def _panels(lightness, ab_true, ab_pred) -> list[np.ndarray]:
    gray = np.repeat(lightness, 3, axis=-1)
    return [color_tf.unit_to_rgb(gray).numpy(),
            *[color_tf.unit_to_rgb(color_tf.to_rgb(lightness[None], ab[None])[0]).numpy() for ab in (ab_pred, ab_true)]]


def contact_sheet(extremes: Extremes) -> np.ndarray:
    """Best photos first, then the worst: gray | predicted | truth, each captioned with its RGB PSNR, class
    and file name (when known). RGB."""
    ranked = extremes.ranked()
    return sheets.grid([_panels(*planes) for _, planes in ranked], ["gray", "predicted", "truth"],
                       [caption for caption, _ in ranked])
