"""The evaluation layer: realism reports and the reconstruction benchmark.

Library code (everything else under ``mogen``) never imports this package; it imports the
library. Metrics themselves are library code in :mod:`mogen.metrics`.

- ``python -m mogen.evaluate.generation`` (``mogen evaluate``): realism of generated fragments
  vs held-out neurons, with baselines
- ``python -m mogen.evaluate.augment`` (``mogen benchmark``): do synthetic neurons cut
  reconstruction errors per mm

From a checkout, ``python -m eval.generation`` and ``python -m eval.augment`` do the same.
"""
