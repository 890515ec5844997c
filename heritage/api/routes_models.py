"""``/api/models``: list, read, upload, register, delete, lineage, path, common ancestor, reprocess."""

from __future__ import annotations

import logging
import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Path as PathParam, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from heritage.api.deps import DbDep, JobsDep, ReadAccess, SettingsDep, WriteAccess
from heritage.api.errors import BadUpload, Conflict
from heritage.api.schemas import (
    MAX_NAME_LENGTH,
    CommonAncestor,
    ConflictResponse,
    DeleteResponse,
    ErrorResponse,
    ImportResponse,
    JobAccepted,
    Lineage,
    Model,
    ModelPage,
    ModelPath,
    RegisterRequest,
    UploadForm,
    ValidationErrorResponse,
)
from heritage.api.uploads import detect_format, discard, receive_upload, remove_stored_upload, store_upload
from heritage.catalogue.config import MAX_DEPTH
from heritage.catalogue.errors import PathNotAllowedError
from heritage.catalogue.names import name_problem, without_hidden_characters

__all__ = ["router", "job_accepted"]

log = logging.getLogger(__name__)
router = APIRouter(tags=["models"])

ModelId = Annotated[str, PathParam(min_length=1, max_length=128, description="model id")]
MAX_PAGE = 500

_NOT_FOUND = {404: {"model": ErrorResponse, "description": "no such model"}}
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "missing or invalid API key"},
    403: {"model": ErrorResponse, "description": "writes are not allowed"},
}
_IMPORT_ERRORS: dict[int | str, dict[str, Any]] = {
    **_WRITE_ERRORS,
    400: {"model": ErrorResponse, "description": "not a readable model, or a checkpoint that would run code"},
    409: {"model": ConflictResponse, "description": "same weights (existing_id) or name already stored"},
}

UPLOAD_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": "safetensors file or PyTorch checkpoint"},
                        **{name: {k: v for k, v in field.items() if k != "anyOf"}
                           | next((alt for alt in field.get("anyOf", []) if alt.get("type") == "string"), {})
                           for name, field in UploadForm.model_json_schema()["properties"].items()},
                    },
                }
            }
        },
    }
}


def job_accepted(request: Request, job: dict[str, Any]) -> JobAccepted:
    """The 202 body: the queued job and where to poll it."""
    return JobAccepted.model_validate(
        {"job": job, "url": str(request.url_for("get_job", job_id=job["id"]).path)}
    )


# ------------------------------------------------------------------------------- reads


@router.get("/models", response_model=ModelPage, dependencies=[ReadAccess],
            summary="List and search models")
async def list_models(
    db: DbDep,
    q: Annotated[str | None, Query(max_length=200, description="substring of name or description")] = None,
    family_id: Annotated[str | None, Query(max_length=128)] = None,
    format: Annotated[str | None, Query(max_length=64, description="e.g. safetensors, pytorch")] = None,
    status: Literal["processing", "ok", "error"] | None = None,
    skip: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> ModelPage:
    items, total = await db.read(db.catalogue.list_models, q or None, family_id, format, status, skip, limit)
    return ModelPage.model_validate({"items": items, "total": total, "skip": skip, "limit": limit})


@router.get("/models/{model_id}", response_model=Model, dependencies=[ReadAccess], responses=_NOT_FOUND)
async def get_model(model_id: ModelId, db: DbDep) -> Model:
    return Model.model_validate(await db.read(db.catalogue.get_model, model_id))


@router.get("/models/{model_id}/lineage", response_model=Lineage, dependencies=[ReadAccess],
            responses=_NOT_FOUND, summary="Ancestors and nested descendants of a model")
async def model_lineage(
    model_id: ModelId,
    db: DbDep,
    depth: Annotated[int, Query(ge=1, le=MAX_DEPTH, description="generations up and down")] = 10,
) -> Lineage:
    return Lineage.model_validate(await db.read(db.catalogue.lineage, model_id, depth))


@router.get("/models/{model_id}/path/{other_id}", response_model=ModelPath, dependencies=[ReadAccess],
            responses=_NOT_FOUND, summary="The tree path between two models")
async def model_path(model_id: ModelId, other_id: ModelId, db: DbDep) -> ModelPath:
    found = await db.read(db.catalogue.path, model_id, other_id)
    if found is None:
        return ModelPath(related=False)
    return ModelPath.model_validate({"related": True, **found})


@router.get("/models/{model_id}/common-ancestor/{other_id}", response_model=CommonAncestor,
            dependencies=[ReadAccess], responses=_NOT_FOUND,
            summary="The lowest common ancestor of two models, with the generations from each")
async def common_ancestor(model_id: ModelId, other_id: ModelId, db: DbDep) -> CommonAncestor:
    found = await db.read(db.catalogue.lowest_common_ancestor, model_id, other_id)
    if found is None:
        return CommonAncestor(related=False)
    return CommonAncestor.model_validate({"related": True, "ancestor": {"id": found["id"], "name": found["name"]},
                                          "from_a": found["from_a"], "from_b": found["from_b"]})


# ------------------------------------------------------------------------------ writes


def _default_name(filename: str | None, sha256: str) -> str:
    """A model name from the client's file name: base name, no extension, none of the
    characters a name may not hold (the client chose a file name, not a model name);
    ``upload-<sha256 prefix>`` when nothing usable is left."""
    from heritage.reading.loader import model_name_for

    base = PureWindowsPath(PurePosixPath(filename or "").name).name
    stem = model_name_for(Path(base)) if base else ""
    stem = without_hidden_characters(re.sub(r"[/\\]", "", stem)).strip()[:MAX_NAME_LENGTH]
    return stem if name_problem(stem) is None else f"upload-{sha256[:12]}"


async def _outcome(db: Any, result: Any, response: Response) -> ImportResponse:
    """Map an ImportResult to the response (201) or an error (409 duplicate, 400 failed)."""
    if result.status == "duplicate":
        raise Conflict(f"these weights are already in the catalogue as model {result.model_id}",
                       existing_id=result.model_id)
    if result.status == "failed" or not result.model_id:
        raise BadUpload(f"not a readable model: {result.error or 'unknown error'}")
    model = await db.read(db.catalogue.get_model, result.model_id)
    response.headers["Location"] = f"/api/models/{result.model_id}"
    return ImportResponse.model_validate({"status": "created", "model": model})


@router.post(
    "/models",
    status_code=201,
    response_model=ImportResponse,
    dependencies=[WriteAccess],
    openapi_extra=UPLOAD_OPENAPI,
    responses={**_IMPORT_ERRORS,
               413: {"model": ErrorResponse, "description": "file larger than HERITAGE_MAX_UPLOAD_BYTES"},
               422: {"model": ValidationErrorResponse, "description": "invalid name or description"},
               415: {"model": ErrorResponse, "description": "not a safetensors or PyTorch checkpoint"}},
    summary="Upload a model file (multipart: file, name, description)",
)
async def upload_model(request: Request, response: Response, db: DbDep, settings: SettingsDep) -> ImportResponse:
    await db.ensure_available()  # do not take in gigabytes only to fail on the database
    received = await receive_upload(request.headers.get("content-type"), request.headers.get("content-length"),
                                    request.stream(), settings.upload_dir, settings.max_upload_bytes)
    keep = False
    try:
        try:
            form = UploadForm.model_validate(received.fields)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from None
        detected = await anyio.to_thread.run_sync(detect_format, received.path)
        store_upload(received, detected, settings.upload_dir)
        name = form.name or _default_name(received.filename, received.sha256)
        log.info("upload %s (%d bytes, %s, sha256 %s)", name, received.size, detected.format, received.sha256[:12])
        result = await db.compute(db.catalogue.import_model, received.path, name, form.description, uploaded=True)
        outcome = await _outcome(db, result, response)
        keep = True
        return outcome
    finally:
        if not keep:
            discard(received.path)


@router.post("/models/register", status_code=201, response_model=ImportResponse, dependencies=[WriteAccess],
             responses={**_IMPORT_ERRORS, 403: {"model": ErrorResponse,
                                                "description": "path outside the import roots, or writes not allowed"}},
             summary="Register a model that already lies on the server (inside HERITAGE_IMPORT_ROOTS)")
async def register_model(body: RegisterRequest, response: Response, db: DbDep) -> ImportResponse:
    from heritage.catalogue.paths import check_import_path

    # Resolve and confine the path first, then inspect a single file's content like an
    # upload (a pickle that would run code is refused before any loader opens it).
    try:
        resolved = await anyio.to_thread.run_sync(check_import_path, body.path, db.catalogue.config.import_roots)
        if resolved.is_file():
            await anyio.to_thread.run_sync(detect_format, resolved)
    except PathNotAllowedError:
        raise  # 403, logged by its handler
    except (OSError, RuntimeError, ValueError) as exc:  # a name too long, an unreadable file...
        log.info("register %r: unusable path: %s", body.path[:200], exc)
        raise BadUpload(f"the path cannot be used: {getattr(exc, 'strerror', None) or exc}") from None
    result = await db.compute(db.catalogue.register, resolved, body.name, body.description)
    return await _outcome(db, result, response)


@router.delete("/models/{model_id}", response_model=DeleteResponse, dependencies=[WriteAccess],
               responses={**_NOT_FOUND, **_WRITE_ERRORS},
               summary="Delete a model (and the file its upload stored); its children are re-attached "
                       "within the family")
async def delete_model(model_id: ModelId, db: DbDep, settings: SettingsDep) -> DeleteResponse:
    deleted = await db.long_write(db.catalogue.delete_model, model_id)
    if deleted.get("uploaded"):  # the file this API stored goes with the model; a user's file stays
        await anyio.to_thread.run_sync(remove_stored_upload, deleted.get("path"), settings.upload_dir)
    return DeleteResponse.model_validate(deleted)


@router.post("/models/{model_id}/reprocess", status_code=202, response_model=JobAccepted,
             dependencies=[WriteAccess], responses={**_NOT_FOUND, **_WRITE_ERRORS},
             summary="Re-read a model's weights and rebuild its family tree (a job)")
async def reprocess_model(model_id: ModelId, request: Request, db: DbDep, jobs: JobsDep) -> JobAccepted:
    await db.read(db.catalogue.get_model, model_id)  # 404 now rather than a failed job later
    return job_accepted(request, await db.write(jobs.reprocess_model, model_id))
