"""Long work started through the API — recluster, tree rebuild, reprocess — as jobs.

A request that starts long work gets ``202 Accepted`` and a job id at once; the work
runs on the catalogue's background job runner (a thread pool inside this process) and
its state, progress and result are persisted as ``(:Job)`` nodes, so ``GET
/api/jobs/{id}`` works from any worker process and across restarts.  The catalogue
records which process owns each job and, at start-up, marks failed the jobs whose
process is gone: a crash never leaves a job "running" forever.

One runner, the catalogue's, for the whole process: a second pool here would let two
jobs rewrite the same families at once.  This module only decides what each job kind
does and what part of its outcome is public (no server paths in job results).
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["JobKinds"]

log = logging.getLogger(__name__)


class JobKinds:
    """Submits the API's job kinds to the catalogue's job runner.

    Every method blocks briefly (it writes the queued job node): call it off the event
    loop.  Each returns the catalogue's job record.
    """

    def __init__(self, catalogue: Any) -> None:
        self.catalogue = catalogue

    def recluster(self) -> dict[str, Any]:
        return self.catalogue.submit_recluster()

    def rebuild_family(self, family_id: str) -> dict[str, Any]:
        catalogue = self.catalogue

        def work(job: Any) -> dict[str, Any]:
            job.progress(0.05, f"rebuilding the tree of family {family_id}")
            family = catalogue.rebuild_family(family_id)
            return {"family_id": family["id"], "member_count": family.get("member_count"),
                    "version": family.get("version"),
                    "roots": [r.get("id") for r in family.get("roots") or []]}

        return catalogue.submit_job("rebuild_family", work, f"waiting to rebuild family {family_id}")

    def reprocess_model(self, model_id: str) -> dict[str, Any]:
        catalogue = self.catalogue

        def work(job: Any) -> dict[str, Any]:
            job.progress(0.05, f"re-reading the weights of model {model_id}")
            model = catalogue.reprocess_model(model_id)
            return {"model_id": model["id"], "status": model.get("status"), "error": model.get("error"),
                    "family_id": model.get("family_id"), "parent_id": model.get("parent_id")}

        return catalogue.submit_job("reprocess_model", work, f"waiting to reprocess model {model_id}")
