"""Reading neurons and turning them into fragment datasets.

Public API::

    read_swc, read_mesh, load_file, navis_examples   # readers -> µm
    make_fragments                                   # neuron -> fragments (unit ball)
    group_cells, fingerprint                         # which files hold the same cell (cells.py)
    split_neurons, assign_cells                      # by-cell split: no cell in two splits
    read_manifest, read_split, manifest_hash         # the dataset directory (one owner: dataset.py)
    FragmentDataset, make_loader                     # dataset dir -> training batches
    DataError, SWCError, MeshError                   # bad input, naming file and place

Heavy modules (navis, trimesh) are imported lazily by the readers.
"""

from .dataset import (FragmentDataset, Split, cell_of, check_generator, make_loader, manifest_hash, read_manifest,
                      read_split, split_cells)
from mogen.errors import DataError, MeshError, SWCError
from .split import SPLITS, assign_cells, split_neurons


def __getattr__(name):
    # Readers pull in navis/trimesh; import them only when asked, so `import mogen.data`
    # stays quick for the training loop.
    lazy = {
        "read_swc": ("swc", "read_swc"),
        "parse_swc": ("swc", "parse_swc"),
        "read_mesh": ("mesh", "read_mesh"),
        "load_file": ("neuron", "load_file"),
        "navis_examples": ("neuron", "navis_examples"),
        "Neuron": ("neuron", "Neuron"),
        "make_fragments": ("fragments", "make_fragments"),
        "to_um": ("units", "to_um"),
        "group_cells": ("cells", "group_cells"),
        "fingerprint": ("cells", "fingerprint"),
    }
    if name in lazy:
        import importlib

        mod, attr = lazy[name]
        return getattr(importlib.import_module(f"{__name__}.{mod}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FragmentDataset", "Split", "cell_of", "split_cells", "check_generator", "make_loader", "manifest_hash", "read_manifest", "read_split", "DataError",
           "MeshError", "SWCError", "SPLITS", "split_neurons", "assign_cells", "group_cells", "fingerprint", "read_swc", "parse_swc",
           "read_mesh", "load_file",
           "navis_examples", "Neuron", "make_fragments", "to_um"]
