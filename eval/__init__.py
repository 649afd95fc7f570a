"""Entry points kept for a checkout: ``python -m eval.generation`` and ``python -m eval.augment``.

The code lives in :mod:`mogen.evaluate` (installed with the package); these two modules only
forward to it, so the repository's commands keep working. Not installed by pip.
"""
