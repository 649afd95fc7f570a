"""Realism metrics for generated neuron fragments (used by ``eval/``).

One idea per module:

- ``features``       MoGen's ten rotation-invariant shape features of a cloud
- ``mmd``            MoGen's feature-MMD realism score built on them
- ``pointcloud``     Chamfer / EMD matrices and the PointFlow metrics 1-NNA, COV, MMD
- ``morphometrics``  skeletonise clouds, compare cable length, branching, caliber, tortuosity
- ``memorization``   nearest-train vs nearest-held-out distance of each generated cloud
"""
