"""Model Heritage: recover the genealogy of AI model weights.

The package is split so that each part can be understood alone:

* loading, layers, fingerprints, distances, kurtosis, clustering and trees are the
  compute core: pure NumPy/networkx over weights, no database;
* ``heritage.pipeline``, ``heritage.api`` and ``heritage.cli`` compose the compute
  core with the Neo4j layer in the top-level ``graph`` package.
"""

__version__ = "0.1.0"
