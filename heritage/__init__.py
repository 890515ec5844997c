"""Model Heritage: recover the genealogy of AI model weights.

The package is layered so that each part can be understood alone:

* :mod:`heritage.reading` opens checkpoints and reads each model once into a fingerprint;
* :mod:`heritage.lineage` turns fingerprints into families and directed trees;
* :mod:`heritage.evaluation` builds ground-truth zoos and scores recoveries;

these three never import the database.  :mod:`heritage.catalogue`, :mod:`heritage.api`
and :mod:`heritage.cli` compose them with the Neo4j layer in the top-level ``graph``
package.
"""

__version__ = "0.1.0"
