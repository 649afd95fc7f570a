"""mogen: neuron morphology generation with point-cloud flow matching.

The pipeline, one stage per sub-package (see DESIGN.md):

- ``mogen.data``     read SWC/meshes -> fragments -> dataset dir (manifest.json)
- ``mogen.model``    velocity network (points <-> latent tokens, kNN features)
- ``mogen.flow``     probability path, time warp, loss, ODE solvers
- ``mogen.metrics``  realism metrics used by ``eval/``
- ``mogen.augment``  render neurons into segmentation data, merge/split examples
"""

__version__ = "0.1.0"
