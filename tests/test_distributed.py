"""Imports and reclusters on a Dask cluster (``dask.distributed.LocalCluster``, worker processes).

* a Dask import of the small zoo gives the same catalogue as an in-process import;
* a worker SIGKILLed while it fingerprints: the import finishes, nothing lost or duplicated;
* a recluster whose candidate searches and trees run on the workers gives the in-process result;
* an unreachable scheduler is a one-line error.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graph.database import Database
from heritage.catalogue import Catalogue, CatalogueConfig, collect_entries
from heritage.catalogue.errors import SchedulerUnavailable

distributed = pytest.importorskip("distributed", reason="the distributed extra is part of the test installation")


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GiB",
                      dashboard_address=None, silence_logs=40) as local:
        yield local


@pytest.fixture(scope="module")
def zoo_entries(small_zoo) -> list[tuple[str, Path]]:
    return collect_entries([Path(small_zoo) / "models"])


def catalogue_state(db: Database) -> dict[str, Any]:
    """The stored catalogue by model name (ids are random): models, fingerprints, families, typed edges."""
    models = db.read("MATCH (m:Model) OPTIONAL MATCH (m)<-[:OF]-(fp:Fingerprint) "
                     "RETURN m.name AS name, m.sha256 AS sha, m.status AS status, m.kurtosis AS kurtosis, "
                     "m.placement AS placement, m.structureHash AS structure, m.backboneKey AS backbone, "
                     "m.layers AS layers, m.revision AS revision, count(fp) AS fingerprints ORDER BY name")
    families = db.read("MATCH (m:Model)-[:IN_FAMILY]->(f:Family) RETURN f.id AS id, collect(m.name) AS names")
    edges = db.read("MATCH (c:Model)-[r:DERIVED_FROM]->(p:Model) "
                    "RETURN p.name AS parent, c.name AS child, r.relation AS relation")
    return {
        "models": models,
        "families": sorted(sorted(r["names"]) for r in families),
        "edges": sorted((r["parent"], r["child"], r["relation"]) for r in edges),
    }


def assert_same_catalogue(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["families"] == b["families"]
    assert a["edges"] == b["edges"]
    assert [m["name"] for m in a["models"]] == [m["name"] for m in b["models"]]
    for x, y in zip(a["models"], b["models"]):
        keys = ("sha", "status", "structure", "backbone", "layers", "revision")
        assert [x[k] for k in keys] == [y[k] for k in keys] and y["fingerprints"] == 1
        if x["placement"] is None:
            assert y["placement"] is None
        else:
            np.testing.assert_allclose(x["placement"], y["placement"], rtol=1e-5, atol=1e-7)
        assert (x["kurtosis"] is None) == (y["kurtosis"] is None)
        if x["kurtosis"] is not None:
            assert y["kurtosis"] == pytest.approx(x["kurtosis"], rel=1e-5)


@pytest.fixture(scope="module")
def in_process_state(neo4j_database: Database, zoo_entries) -> dict[str, Any]:
    """The small zoo imported in this process (the reference the Dask imports must match)."""
    from graph.schema import apply_schema

    neo4j_database.write("MATCH (n) DETACH DELETE n")
    apply_schema(neo4j_database)
    with Catalogue(CatalogueConfig(), db=neo4j_database) as catalogue:
        summary = catalogue.import_many(zoo_entries)
    assert summary.created == len(zoo_entries) and summary.failed == 0
    state = catalogue_state(neo4j_database)
    assert len(state["families"]) >= 3 and len(state["edges"]) >= 6
    return state


def test_dask_import_of_the_small_zoo_equals_an_in_process_import(in_process_state, neo4j_db, cluster,
                                                                  zoo_entries) -> None:
    with Catalogue(CatalogueConfig(dask_scheduler=cluster.scheduler_address, batch_size=4), db=neo4j_db) as catalogue:
        summary = catalogue.import_many(zoo_entries)
        assert summary.created == len(zoo_entries) and summary.failed == 0
        assert_same_catalogue(in_process_state, catalogue_state(neo4j_db))
        again = catalogue.import_many(zoo_entries)  # idempotent: everything is a duplicate
        assert again.duplicates == len(zoo_entries) and again.created == 0
        assert_same_catalogue(in_process_state, catalogue_state(neo4j_db))


def test_a_worker_killed_while_fingerprinting_loses_nothing(in_process_state, neo4j_db, cluster,
                                                             zoo_entries) -> None:
    client = distributed.Client(cluster.scheduler_address)
    pids = client.run(os.getpid)
    killed: list[str] = []

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for worker, tasks in client.processing().items():
                if any(str(t).startswith("_prepare_task") for t in tasks) and worker in pids:
                    os.kill(pids[worker], signal.SIGKILL)
                    killed.append(worker)
                    return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    catalogue = Catalogue(CatalogueConfig(dask_scheduler=cluster.scheduler_address, batch_size=6), db=neo4j_db)
    try:
        killer.start()
        summary = catalogue.import_many(zoo_entries)
        killer.join(timeout=5)
        assert killed, "no worker was caught fingerprinting"
        assert summary.created == len(zoo_entries) and summary.failed == 0 and summary.duplicates == 0
        state = catalogue_state(neo4j_db)
        assert len({m["sha"] for m in state["models"]}) == len(state["models"]) == len(zoo_entries)
        assert_same_catalogue(in_process_state, state)
        client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker
    finally:
        catalogue.close()
        client.close()


def test_recluster_on_dask_equals_recluster_in_process(in_process_state, neo4j_db, cluster, zoo_entries) -> None:
    with Catalogue(CatalogueConfig(), db=neo4j_db) as local:
        local.import_many(zoo_entries)
        local.recluster()
    expected = catalogue_state(neo4j_db)
    with Catalogue(CatalogueConfig(dask_scheduler=cluster.scheduler_address), db=neo4j_db) as remote:
        result = remote.recluster()
        assert result["models"] == len(zoo_entries)
        assert_same_catalogue(expected, catalogue_state(neo4j_db))
        assert_same_catalogue(in_process_state, catalogue_state(neo4j_db))


def test_an_unreachable_scheduler_is_a_clear_error(neo4j_db, zoo_entries, capsys) -> None:
    from heritage.cli import main

    with Catalogue(CatalogueConfig(dask_scheduler="tcp://127.0.0.1:9"), db=neo4j_db) as catalogue:
        with pytest.raises(SchedulerUnavailable, match="cannot be reached"):
            catalogue.import_many(zoo_entries[:1])
    assert neo4j_db.read("MATCH (m:Model) RETURN count(m) AS n")[0]["n"] == 0
    assert main(["import", str(zoo_entries[0][1]), "--scheduler", "tcp://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert "tcp://127.0.0.1:9 cannot be reached" in err and "Traceback" not in err
