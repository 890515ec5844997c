"""Reading one model for the catalogue: open and hash it, then profile and fingerprint it.

The two steps are separate on purpose: hashing (streaming the files once) is enough to
recognise weights that are already stored, so a re-run of an import skips them without
the cost of fingerprinting.  Both steps raise :class:`heritage.errors.ModelLoadError`
(with a one-line reason) for a bad model.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heritage.catalogue.placement import declared_base_candidates, placement_vector
from heritage.catalogue.planning import Member
from heritage.reading.fingerprint import FINGERPRINT_VERSION, Fingerprint, fingerprint_model
from heritage.reading.hub_cache import snapshot_revision
from heritage.reading.loader import LoadedModel, load_model
from heritage.reading.profile import ModelProfile, file_sha256, profile_model

__all__ = ["Opened", "Prepared", "open_model", "prepare_model"]


@dataclass
class Opened:
    """A model opened (headers only) and hashed, not yet fingerprinted."""

    name: str
    path: Path
    model: LoadedModel
    sha256: str


@dataclass
class Prepared:
    """A model ready to store: new id, profile, fingerprint (named by id) and its bytes.

    ``uploaded``: the file at ``path`` was stored by the API's upload, so it goes with the
    model when the model is deleted; any other file is the user's and stays.
    """

    id: str
    name: str
    path: Path
    description: str | None
    profile: ModelProfile
    fingerprint: Fingerprint
    data: bytes
    uploaded: bool = False

    @property
    def sha256(self) -> str:
        return self.profile.sha256

    def props(self) -> dict[str, Any]:
        """Model node properties (camelCase, as in cypher/README.md)."""
        p = self.profile
        kurtosis = self.fingerprint.kurtosis
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "sha256": p.sha256,
            "format": p.format,
            "params": p.params,
            "tensors": p.tensors,
            "layers": p.layers,
            "structureHash": p.structure_hash,
            "backboneKey": None if p.is_adapter else self.fingerprint.backbone_key,
            "dtype": ",".join(p.dtypes),
            "isAdapter": p.is_adapter,
            "adapterRank": p.adapter_rank,
            "kurtosis": None if math.isnan(kurtosis) else kurtosis,
            "status": "ok",
            "error": None,
            "path": str(self.path),
            "uploaded": self.uploaded,
            "declaredBase": p.declared_base,
            "declaredRelation": p.declared_relation,
            "declaredBases": list(p.declared_bases),
            "quantization": p.quantization,
            "revision": p.revision,
            "placement": placement_vector(self.fingerprint),
        }

    def create_row(self) -> dict[str, Any]:
        return {"props": self.props(), "fingerprint": self.data, "fingerprintVersion": FINGERPRINT_VERSION}

    def declared_row(self) -> dict[str, Any] | None:
        """One row of ``model_link_declared_bases``: every declared base with its catalogue
        name candidates, and the declared relation (the same for all of them)."""
        bases = self.profile.declared_bases
        if not bases:
            return None
        return {"id": self.id, "relation": self.profile.declared_relation,
                "bases": [{"base": b, "candidates": declared_base_candidates(b)} for b in bases]}

    def member(self) -> Member:
        return Member(id=self.id, name=self.name, sha256=self.sha256,
                      is_adapter=self.profile.is_adapter, declared_base=self.profile.declared_base)


def open_model(path: str | Path, name: str | None = None) -> Opened:
    """Open ``path`` (headers only) and compute the SHA-256 of its files."""
    given = Path(path).expanduser()
    path = given.resolve()
    model = load_model(path, name)
    if model.revision is None:  # a hub snapshot's files are links into blobs/: keep the snapshot's revision
        model.revision = snapshot_revision(given.absolute())
    return Opened(name=model.name, path=path, model=model, sha256=file_sha256(model.files))


def prepare_model(opened: Opened, description: str | None = None, model_id: str | None = None, *,
                  uploaded: bool = False) -> Prepared:
    """Profile and fingerprint an opened model (reads every compared weight matrix once)."""
    profile = profile_model(opened.model, sha256=opened.sha256)
    model_id = model_id or uuid.uuid4().hex
    fingerprint = dataclasses.replace(fingerprint_model(opened.model), name=model_id)
    return Prepared(id=model_id, name=opened.name, path=opened.path, description=description,
                    profile=profile, fingerprint=fingerprint, data=fingerprint.to_bytes(), uploaded=uploaded)
