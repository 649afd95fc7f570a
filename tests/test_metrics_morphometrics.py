"""Skeleton morphometrics on shapes whose answers are known."""

import numpy as np
import pytest

from mogen.metrics.morphometrics import MORPH_NAMES, compare_morphometrics, morphometrics
from mogen.skeleton import skeleton_graph


def tube(p0, p1, radius, n, rng):
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    length = np.linalg.norm(d)
    d /= length
    u = np.cross(d, [0.3, 0.5, 0.8])
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    t, a = rng.uniform(0, 1, n), rng.uniform(0, 2 * np.pi, n)
    return p0 + t[:, None] * length * d + radius * (np.cos(a)[:, None] * u + np.sin(a)[:, None] * v)


def test_rod_and_y_junction():
    rng = np.random.default_rng(0)
    rod = tube([-9, 0, 0], [9, 0, 0], 0.4, 1024, rng)
    y = np.concatenate(
        [tube([0, 0, 0], [-8, 0, 0], 0.4, 400, rng), tube([0, 0, 0], [6, 5, 0], 0.3, 312, rng), tube([0, 0, 0], [6, -5, 1], 0.3, 312, rng)]
    )
    m = {name: col for name, col in zip(MORPH_NAMES, morphometrics(np.stack([rod, y]) / 10.0, radius_um=10.0).T)}
    assert list(m["branch_points"]) == [0, 1] and list(m["leaves"]) == [2, 3]
    assert 13 < m["cable_um"][0] < 18  # 18 µm rod, ends retract by up to 2 µm each
    assert 16 < m["cable_um"][1] < 24
    assert m["caliber_um"][0] == pytest.approx(0.4, abs=0.15)
    assert m["tortuosity"][0] == pytest.approx(1.0, abs=0.05)


def test_arc_is_tortuous_and_skeleton_is_a_tree():
    rng = np.random.default_rng(1)
    s = np.linspace(0, np.pi, 1500)
    arc = np.stack([7 * np.cos(s), 7 * np.sin(s), 0 * s], 1) + rng.normal(0, 0.2, (1500, 3))
    nodes, adj = skeleton_graph(arc)
    edges = sum(len(nb) for nb in adj.values()) // 2
    assert edges == len(adj) - 1  # connected tree
    tort = morphometrics(arc[None])[0, MORPH_NAMES.index("tortuosity")]
    assert 1.2 < tort < np.pi / 2 + 0.05  # half circle: pi/2 for the full arc


def test_compare_identical_and_shifted():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(50, 5))
    same = compare_morphometrics(a, a)
    assert all(v["W1"] == 0 and v["KS"] == 0 for v in same.values())
    shifted = compare_morphometrics(a + 3.0, a)
    assert all(v["W1"] == pytest.approx(3.0) and v["KS"] > 0.8 for v in shifted.values())
