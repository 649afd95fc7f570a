"""Neurons rendered into segmentation data, and what an agglomeration step must decide.

The reconstruction benchmark's path, one module per stage::

    arms.py      which objects fill a training volume (real, synthetic, controls): one registry
    volume.py    VolumeSpec; pack + render objects (render.py), over-segment (segment.py),
                 cut merge candidates and their views (examples.py)
    io.py        zarr/HDF5 label volumes: the one reader and writer
    em.py        an EM-like raw image from labels
    random_walk.py  random-walk neurons (a control arm)
    cli.py       ``mogen augment render`` / ``mogen augment examples``

The experiment that uses them is :mod:`mogen.evaluate.augment` (``mogen benchmark``).
"""
