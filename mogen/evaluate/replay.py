"""Agglomeration replay: over-segment held-out neurons, merge pieces by classifier score, count errors.

This stands in for the last step of a connectome reconstruction pipeline, where supervoxels are
agglomerated into neurons and every wrong decision is a split (a neuron left in several
segments) or a merge (one segment holding several neurons).

1. ``neuron_clouds``: each held-out neuron's surface, rebuilt from its dataset fragments
   (points × R + anchor, thinned on a grid), in the neurons' shared frame, so neurons that run
   together in the brain (the navis DA1 projection neurons do) touch as in neuropil.
2. ``oversegment``: pieces = connected components of one neuron's points inside each cell of a
   cubic grid (like block-wise segmentation, which breaks neurites at block faces).
3. ``contact_edges``: pieces whose surfaces come within ``contact_um`` are candidates; the
   contact point is the midpoint of their closest pair.
4. ``edge_clouds``: for each candidate, the two pieces' points within R of the contact,
   recentred and scaled to the unit ball: the same view the classifier was trained on.
5. ``agglomerate``: accept candidates greedily from the highest score down while the score is
   at least the threshold (union-find); ``count_errors`` then counts splits and merges.

Examples
--------
>>> import numpy as np
>>> agglomerate(2, np.array([[0, 1]]), np.array([0.9]), 0.5)
array([0, 0])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from mogen.augment.examples import grid_thin


def neuron_clouds(points: np.ndarray, anchors_um: np.ndarray, neuron_ids: np.ndarray, radius_um: float,
                  neurons: list[str], cell_um: float = 0.4) -> dict[str, np.ndarray]:
    """Each listed neuron's surface in µm, rebuilt from its unit-ball fragments.

    Overlapping crops are merged and thinned to one point per ``cell_um`` grid cell.
    """
    ids = np.asarray(neuron_ids).astype(str)
    out = {}
    for nid in neurons:
        rows = np.flatnonzero(ids == nid)
        if len(rows) == 0:
            raise ValueError(f"neuron {nid} has no fragments in this split")
        pts = np.asarray(points[rows], dtype=np.float64) * radius_um + np.asarray(anchors_um[rows], np.float64)[:, None]
        out[nid] = grid_thin(pts.reshape(-1, 3), cell_um)
    return out


def cable_in_crops(xyz: np.ndarray, parent: np.ndarray, anchors_um: np.ndarray, radius_um: float,
                   step_um: float = 0.5) -> float:
    """µm of skeleton cable within ``radius_um`` of any anchor: the part of a neuron its crops cover.

    Datasets keep at most a few hundred crops per neuron, so a long neuron's rebuilt cloud covers
    only part of its cable; errors per mm must be divided by that part. Each edge (node → parent)
    is cut into pieces of at most ``step_um`` whose midpoints are tested.

    Examples
    --------
    >>> xyz = np.array([[0.0, 0, 0], [100.0, 0, 0]])
    >>> round(cable_in_crops(xyz, np.array([-1, 0]), np.array([[50.0, 0, 0]]), 10.0), 1)
    20.0
    """
    child = np.flatnonzero(parent >= 0)
    a, b = xyz[child], xyz[parent[child]]
    length = np.linalg.norm(b - a, axis=1)
    n = np.maximum(1, np.ceil(length / step_um)).astype(np.int64)
    edge = np.repeat(np.arange(len(child)), n)
    frac = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + 0.5) / n[edge]
    mids = a[edge] + frac[:, None] * (b - a)[edge]
    d, _ = cKDTree(np.asarray(anchors_um, np.float64)).query(mids, distance_upper_bound=radius_um)
    return float((length[edge] / n[edge])[np.isfinite(d)].sum())


def covered_cable_um(entry: dict, anchors_um: np.ndarray, radius_um: float) -> float:
    """Cable (µm) of a dataset neuron covered by its crops (``entry`` = its manifest.json record).

    When every anchor became a fragment the crops cover the whole neuron and the manifest's
    ``cable_um`` is the answer; otherwise the neuron's source file is read again to measure it.
    """
    if int(entry.get("fragments", -1)) >= int(entry.get("anchors", 0)) - int(entry.get("skipped_anchors", 0)):
        return float(entry["cable_um"])
    from mogen.data.neuron import load_file
    from mogen.data.surface import skeleton_geometry

    source = Path(entry["source"])
    if not source.is_file():
        raise FileNotFoundError(
            f"neuron {entry['id']}: its {entry['fragments']} fragments cover part of its {entry['anchors']} anchors, so "
            f"the replay needs its source file {source} to measure the cable they cover, and it is not there")
    units = entry.get("units") if entry.get("units_note") == "from --units" else None
    xyz, _, _, parent = skeleton_geometry(load_file(source, entry["id"], units=units).skeleton)
    return cable_in_crops(xyz, parent, anchors_um, radius_um)


def oversegment(cloud: np.ndarray, piece_um: float = 15.0, link_um: float = 1.0, seed: int = 0) -> np.ndarray:
    """Piece label per point: connected components (links ≤ ``link_um``) within grid cells.

    The grid has a random offset (seeded) so pieces do not line up across neurons.
    """
    rng = np.random.default_rng(seed)
    cells = np.floor((cloud + rng.uniform(0, piece_um, 3)) / piece_um).astype(np.int64)
    _, cell = np.unique(cells, axis=0, return_inverse=True)
    pairs = cKDTree(cloud).query_pairs(link_um, output_type="ndarray")
    pairs = pairs[cell[pairs[:, 0]] == cell[pairs[:, 1]]]
    n = len(cloud)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def contact_edges(cloud: np.ndarray, piece: np.ndarray, contact_um: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Candidate edges [E, 2] between pieces that come within ``contact_um``, and contact points [E, 3]."""
    pairs = cKDTree(cloud).query_pairs(contact_um, output_type="ndarray")
    pa, pb = piece[pairs[:, 0]], piece[pairs[:, 1]]
    keep = pa != pb
    pairs, pa, pb = pairs[keep], pa[keep], pb[keep]
    lo, hi = np.minimum(pa, pb), np.maximum(pa, pb)
    dist = np.linalg.norm(cloud[pairs[:, 0]] - cloud[pairs[:, 1]], axis=1)
    # closest pair per edge: sort by distance, keep the first occurrence of each (lo, hi)
    order = np.lexsort((dist, hi, lo))
    key = np.stack([lo[order], hi[order]], 1)
    first = np.r_[True, np.any(key[1:] != key[:-1], axis=1)]
    best = order[first]
    edges = np.stack([lo[best], hi[best]], 1)
    contacts = 0.5 * (cloud[pairs[best, 0]] + cloud[pairs[best, 1]])
    return edges, contacts


def edge_clouds(cloud: np.ndarray, piece: np.ndarray, edges: np.ndarray, contacts: np.ndarray, radius_um: float,
                n_points: int, seed: int = 0) -> np.ndarray:
    """Unit-ball views [E, n_points, 3] of each candidate: both pieces' points within R of the contact."""
    rng = np.random.default_rng(seed)
    tree = cKDTree(cloud)
    out = np.empty((len(edges), n_points, 3), np.float32)
    for e, ((a, b), c) in enumerate(zip(edges, contacts)):
        idx = np.asarray(tree.query_ball_point(c, radius_um), dtype=np.int64)
        idx = idx[(piece[idx] == a) | (piece[idx] == b)]
        pick = rng.choice(idx, size=n_points, replace=len(idx) < n_points)
        out[e] = (cloud[pick] - c) / radius_um
    return out


def agglomerate(n_pieces: int, edges: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Segment id per piece after greedily accepting edges with score ≥ ``threshold``, best first."""
    parent = np.arange(n_pieces)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for e in np.argsort(-np.asarray(scores), kind="stable"):
        if scores[e] < threshold:
            break
        ra, rb = find(int(edges[e, 0])), find(int(edges[e, 1]))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(i) for i in range(n_pieces)])


def count_errors(segment: np.ndarray, piece_neuron: np.ndarray, edges: np.ndarray, accepted: np.ndarray,
                 counted: set[str], own: np.ndarray | None = None) -> tuple[int, int]:
    """``(splits, merges)`` for the ``counted`` neurons, as a proofreader would have to fix them.

    splits = Σ over each counted neuron's *own components* (its pieces linked by chains of its own
    contacts; default: all its pieces) of (segments holding them − 1), the joins still needed.
    ``own`` [pieces] labels those components; pieces no contact links (crops that do not touch)
    are not splits a classifier could mend;
    merges = accepted edges between two neurons, at least one counted: each is a contact that
    must be cut (the minimum cut that separates the neurons again).
    """
    piece_neuron = np.asarray(piece_neuron).astype(str)
    mine = np.isin(piece_neuron, list(counted))
    group = np.unique(piece_neuron[mine], return_inverse=True)[1] if own is None else own[mine]
    splits = len(np.unique(np.stack([group, segment[mine]], 1), axis=0)) - len(np.unique(group))
    na, nb = piece_neuron[edges[:, 0]], piece_neuron[edges[:, 1]]
    involved = np.isin(na, list(counted)) | np.isin(nb, list(counted))
    merges = int((accepted & (na != nb) & involved).sum())
    return splits, merges


class Replay:
    """Everything the replay needs that does not depend on the classifier, built once.

    Attributes: ``edges`` [E, 2], ``clouds`` [E, P, 3] (classifier inputs), ``same`` [E] bool
    (both pieces from one neuron), ``involved`` [E] bool (touches a counted neuron), ``piece_neuron`` [pieces], ``counted`` (neurons whose errors
    count), ``cable_mm`` (their cable covered by the clouds), ``own`` [pieces] (components
    of each neuron's own contact graph), ``floor`` (their number per counted neuron).
    """

    def __init__(self, clouds_um: dict[str, np.ndarray], counted: list[str], cable_um: dict[str, float],
                 radius_um: float, n_points: int, piece_um: float = 15.0, contact_um: float = 1.0, seed: int = 0):
        names = list(clouds_um)
        pts, piece, piece_neuron, offset = [], [], [], 0
        for k, nid in enumerate(names):
            lab = oversegment(clouds_um[nid], piece_um, seed=seed + k)
            pts.append(clouds_um[nid])
            piece.append(lab + offset)
            piece_neuron += [nid] * (lab.max() + 1)
            offset += lab.max() + 1
        self.points = np.concatenate(pts)
        self.piece = np.concatenate(piece)
        self.piece_neuron = np.asarray(piece_neuron)
        self.n_pieces = offset
        self.edges, self.contacts = contact_edges(self.points, self.piece, contact_um)
        self.same = self.piece_neuron[self.edges[:, 0]] == self.piece_neuron[self.edges[:, 1]]
        self.clouds = edge_clouds(self.points, self.piece, self.edges, self.contacts, radius_um, n_points, seed)
        self.counted = set(counted)
        self.cable_mm = sum(cable_um[n] for n in counted) / 1000.0
        involved = np.isin(self.piece_neuron[self.edges], list(self.counted)).any(1)
        self.involved = involved
        # splits no classifier could mend: a neuron's pieces that no chain of its own contacts links
        self.own = agglomerate(self.n_pieces, self.edges[self.same], np.ones(int(self.same.sum())), 0.5)
        self.floor = {n: len(set(self.own[self.piece_neuron == n])) for n in self.counted}
        self.summary = dict(
            neurons=names, counted=sorted(self.counted), pieces=int(self.n_pieces),
            candidates=int(len(self.edges)), true_candidates=int((self.same & involved).sum()),
            false_candidates=int((~self.same & involved).sum()), cable_mm=round(self.cable_mm, 3),
            piece_um=piece_um, contact_um=contact_um, unjoinable_pieces=int(sum(self.floor.values()) - len(self.floor)),
        )

    def errors(self, scores: np.ndarray, threshold: float) -> dict:
        """Residual split and merge errors per mm of counted cable after agglomeration."""
        seg = agglomerate(self.n_pieces, self.edges, scores, threshold)
        accepted = np.asarray(scores) >= threshold
        splits, merges = count_errors(seg, self.piece_neuron, self.edges, accepted, self.counted, self.own)
        return dict(splits=splits, merges=merges, split_per_mm=splits / self.cable_mm,
                    merge_per_mm=merges / self.cable_mm, errors_per_mm=(splits + merges) / self.cable_mm)
