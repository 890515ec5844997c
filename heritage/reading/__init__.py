"""Reading checkpoints: opening every storage format, profiling, and fingerprinting.

The first layer of the package: from files on disk to the compact, comparable
:class:`~heritage.reading.fingerprint.Fingerprint` that everything else works on.
Nothing here knows about families, trees or the database.

* :mod:`~heritage.reading.loader` opens a file or folder by its content
  (:func:`load_model`), with one module per format (``safetensors_file``,
  ``torch_file``, ``gguf_file``, ``folders``, ``model_card``, ``sniff``, ``dtypes``),
  ``hub_cache`` for Hugging Face cache folders, and ``ggml_library`` / ``ggml_blocks``
  for GGUF's quantised blocks (ggml's compiled decoders when installed, NumPy else);
* :mod:`~heritage.reading.naming` and :mod:`~heritage.reading.parameters` give every
  storage convention the same view: canonical names, buffers and tied copies set apart;
* :mod:`~heritage.reading.layers` classifies each weight by its role (heads included);
* :mod:`~heritage.reading.profile` records real facts (parameters, layers, SHA-256);
* :mod:`~heritage.reading.fingerprint` reads each model once into exact statistics and
  a linear sketch;
* :mod:`~heritage.reading.ingest` does all three for one model or a folder of models.
"""

from heritage.reading.fingerprint import Fingerprint, fingerprint_model
from heritage.reading.ingest import IngestedModel, IngestFailure, ingest, ingest_many, model_entries
from heritage.reading.layers import LayerRole, classify
from heritage.reading.loader import LoadedModel, ModelFormat, TensorRef, load_model, model_name_for
from heritage.reading.profile import ModelProfile, profile_model

__all__ = [
    "Fingerprint",
    "IngestFailure",
    "IngestedModel",
    "LayerRole",
    "LoadedModel",
    "ModelFormat",
    "ModelProfile",
    "TensorRef",
    "classify",
    "fingerprint_model",
    "ingest",
    "ingest_many",
    "load_model",
    "model_entries",
    "model_name_for",
    "profile_model",
]
