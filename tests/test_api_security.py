"""Security of the REST API: authentication, configuration refusals, CORS, headers,
upload content inspection (pickles that would run code), hostile file names, and
robustness against arbitrary input (no 5xx, no tracebacks)."""

from __future__ import annotations

import io
import os
import pickle
import pickletools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st
from hypothesis.errors import Unsatisfiable

from heritage.api.security import KeyVerifier, unsafe_globals_in_checkpoint, unsafe_globals_in_pickle
from heritage.api.settings import ApiSettings, ConfigurationError
from heritage.evaluation.synthetic import family_zoo

WRITE_ENDPOINTS = [
    ("post", "/api/models", {"files": {"file": ("a.safetensors", b"x")}}),
    ("post", "/api/models/register", {"json": {"path": "a.safetensors"}}),
    ("delete", "/api/models/abc", {}),
    ("post", "/api/models/abc/reprocess", {}),
    ("post", "/api/families/abc/tree/rebuild", {}),
    ("post", "/api/clustering/recluster", {}),
]
# Examples per operation in the schema-driven fuzz; raise it for a deeper local run.
FUZZ_EXAMPLES = int(os.environ.get("HERITAGE_FUZZ_EXAMPLES", "25"))
READ_ENDPOINTS = ["/api/models", "/api/models/abc", "/api/families", "/api/stats",
                  "/api/clustering/statistics", "/api/jobs/abc", "/api/models/abc/lineage"]


class Exploit:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


# ------------------------------------------------------------------------- settings


def test_production_refuses_to_start_without_keys(environment) -> None:
    environment(HERITAGE_ENV="production")
    with pytest.raises(ConfigurationError, match="HERITAGE_API_KEYS"):
        ApiSettings.from_env()
    environment(HERITAGE_ENV="production", HERITAGE_API_KEYS="k" * 32, HERITAGE_ALLOW_ANONYMOUS_WRITES="true")
    with pytest.raises(ConfigurationError, match="not allowed in production"):
        ApiSettings.from_env()
    environment(HERITAGE_ENV="production", HERITAGE_API_KEYS="short")
    with pytest.raises(ConfigurationError, match="16 characters"):
        ApiSettings.from_env()
    environment(HERITAGE_ENV="Production", HERITAGE_API_KEYS="k" * 32 + ", " + "j" * 20)
    ok = ApiSettings.from_env()
    assert ok.api_keys == ("k" * 32, "j" * 20) and ok.is_production


def test_create_app_refuses_production_without_keys() -> None:
    from heritage.api.app import create_app

    with pytest.raises(ConfigurationError, match="refusing to start in production"):
        create_app(ApiSettings(environment="production"), catalogue=object())


def test_serve_command_explains_the_refusal(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from heritage.cli import main

    monkeypatch.setenv("HERITAGE_ENV", "production")
    monkeypatch.delenv("HERITAGE_API_KEYS", raising=False)
    assert main(["serve", "--port", "8765"]) == 1
    err = capsys.readouterr().err
    assert "cannot start the API" in err and "HERITAGE_API_KEYS" in err


@pytest.mark.parametrize("env", [
    {"HERITAGE_PROTECT_READS": "maybe"}, {"HERITAGE_ENV": "staging"}, {"HERITAGE_JOB_WORKERS": "0"},
    {"HERITAGE_PROTECT_READS": "true"}, {"HERITAGE_DB_TIMEOUT_S": "-1"}, {"HERITAGE_METRIC": "bogus"},
    {"HERITAGE_MAX_CONCURRENT_IMPORTS": "two"}, {"HERITAGE_MAX_UPLOAD_BYTES": "0"},
])
def test_invalid_settings_are_refused(environment, env: dict[str, str]) -> None:
    environment(**env)
    with pytest.raises(ConfigurationError) as excinfo:
        ApiSettings.from_env()
    assert "\n" not in str(excinfo.value) and "HERITAGE_" in str(excinfo.value)


def test_an_invalid_key_list_never_echoes_the_keys(environment) -> None:
    environment(HERITAGE_ENV="production", HERITAGE_API_KEYS="short-secret")
    with pytest.raises(ConfigurationError) as excinfo:
        ApiSettings.from_env()
    assert "short-secret" not in str(excinfo.value)


def test_defaults_are_closed(environment) -> None:
    environment()
    settings = ApiSettings.from_env()
    assert settings.api_keys == () and not settings.writes_open and settings.cors_origins == ()
    assert not settings.protect_reads and settings.environment == "development"


def test_keys_never_appear_in_repr() -> None:
    secret = "super-secret-key-123456"
    assert secret not in repr(ApiSettings(api_keys=(secret,)))


def test_key_verifier() -> None:
    verifier = KeyVerifier(["alpha-key", "beta-key"])
    assert verifier.verify("alpha-key") and verifier.verify("beta-key")
    assert not verifier.verify("alpha-ke") and not verifier.verify("") and not verifier.verify(None)
    assert not verifier.verify("alpha-key\udcff")
    assert not KeyVerifier([]).verify("anything")


# ---------------------------------------------------------------------- authentication


@pytest.mark.usefixtures("neo4j_db")
@pytest.mark.parametrize("method,path,kwargs", WRITE_ENDPOINTS)
def test_writes_need_a_valid_key(api_client: Any, method: str, path: str, kwargs: dict[str, Any]) -> None:
    missing = getattr(api_client, method)(path, **kwargs)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = getattr(api_client, method)(path, headers={"Authorization": "Bearer wrong"}, **kwargs)
    assert wrong.status_code == 401
    wrong_header = getattr(api_client, method)(path, headers={"X-API-Key": "wrong"}, **kwargs)
    assert wrong_header.status_code == 401
    basic = getattr(api_client, method)(path, headers={"Authorization": "Basic dXNlcjpwYXNz"}, **kwargs)
    assert basic.status_code == 401


@pytest.mark.usefixtures("neo4j_db")
def test_both_key_headers_are_accepted(api_client: Any, api_key: str) -> None:
    for headers in ({"Authorization": f"Bearer {api_key}"}, {"X-API-Key": api_key}):
        response = api_client.post("/api/families/unknown/tree/rebuild", headers=headers)
        assert response.status_code == 404  # authenticated: the family just does not exist


@pytest.mark.usefixtures("neo4j_db")
def test_reads_are_open_by_default(api_client: Any) -> None:
    for path in READ_ENDPOINTS:
        assert api_client.get(path).status_code in (200, 404), path


@pytest.mark.usefixtures("neo4j_db")
def test_protected_reads(api_factory: Any, api_key: str) -> None:
    client = api_factory(protect_reads=True)
    for path in READ_ENDPOINTS:
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"X-API-Key": api_key}).status_code in (200, 404), path
    assert client.get("/api/health").status_code == 200  # probes stay open
    assert client.get("/openapi.json").status_code == 200


@pytest.mark.usefixtures("neo4j_db")
def test_development_without_keys_refuses_writes(api_factory: Any, tmp_path: Path) -> None:
    client = api_factory(keys=())
    for method, path, kwargs in WRITE_ENDPOINTS:
        response = getattr(client, method)(path, **kwargs)
        assert response.status_code == 403, path
        assert "HERITAGE_API_KEYS" in response.json()["detail"]
    assert client.get("/api/models").status_code == 200


@pytest.mark.usefixtures("neo4j_db")
def test_anonymous_writes_only_when_asked_for(api_factory: Any, tmp_path: Path) -> None:
    client = api_factory(keys=(), allow_anonymous_writes=True)
    path = tmp_path / "m.safetensors"
    family_zoo(0, prefix="anon", children=0, grandchildren=0).write(tmp_path)
    path = tmp_path / "anon0.safetensors"
    with path.open("rb") as fh:
        assert client.post("/api/models", files={"file": ("anon0.safetensors", fh)}).status_code == 201


# ------------------------------------------------------------------------ CORS, headers


@pytest.mark.usefixtures("neo4j_db")
def test_no_cors_by_default(api_client: Any) -> None:
    preflight = api_client.options("/api/models", headers={"Origin": "https://evil.example",
                                                           "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in preflight.headers
    simple = api_client.get("/api/models", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


@pytest.mark.usefixtures("neo4j_db")
def test_cors_for_configured_origins_only(api_factory: Any) -> None:
    client = api_factory(cors_origins=("https://ui.example",))
    good = client.get("/api/models", headers={"Origin": "https://ui.example"})
    assert good.headers["access-control-allow-origin"] == "https://ui.example"
    bad = client.get("/api/models", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in bad.headers


@pytest.mark.usefixtures("neo4j_db")
def test_security_headers(api_client: Any) -> None:
    response = api_client.get("/api/models")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


# ---------------------------------------------------------------------- pickle inspection


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_code_running_pickles_are_detected_in_every_protocol(protocol: int, tmp_path: Path) -> None:
    data = pickle.dumps({"weight": Exploit(tmp_path / "x")}, protocol=protocol)
    found = unsafe_globals_in_pickle(data)
    assert any("system" in g for g in found), found


@pytest.mark.parametrize("target", [eval, exec, getattr, __import__, open, Path.write_text])
def test_other_dangerous_globals_are_detected(target: Any) -> None:
    class Call:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (target, ("x",))

    for protocol in (2, 4):
        assert unsafe_globals_in_pickle(pickle.dumps(Call(), protocol=protocol))


def test_computed_or_extension_imports_are_refused() -> None:
    # STACK_GLOBAL whose module name comes from an expression we cannot follow.
    ops = (b"\x80\x04" + b"\x8c\x02os" + b"\x8c\x06system" + b"\x86" + b"0"  # tuple + POP: not our strings
           + b"\x93" + b".")
    assert unsafe_globals_in_pickle(ops)
    ext = b"\x80\x02\x82\x01."  # EXT1 code 1
    assert unsafe_globals_in_pickle(ext)


def test_memoised_strings_are_followed() -> None:
    # module and name pushed, memoised, popped and fetched back from the memo.
    payload = (b"\x80\x04\x8c\x05posix\x94\x8c\x06system\x94" b"0" b"0" b"h\x00h\x01\x93" b".")
    pickletools.dis(io.BytesIO(payload), out=io.StringIO())  # a well-formed pickle
    assert unsafe_globals_in_pickle(payload) == ["posix.system"]


def test_plain_tensor_checkpoints_are_safe(tmp_path: Path) -> None:
    import torch
    state = {"w": torch.randn(3, 3), "h": torch.randn(2).half(), "b": torch.randn(2).bfloat16(),
             "i": torch.arange(4), "mask": torch.ones(2, dtype=torch.bool),
             "p": torch.nn.Parameter(torch.randn(2)), "nested": {"x": torch.zeros(1)}}
    for legacy in (False, True):
        path = tmp_path / f"ok-{legacy}.pt"
        torch.save(state, path, _use_new_zipfile_serialization=not legacy)
        assert unsafe_globals_in_checkpoint(path, is_zip=not legacy) == []
    linear = tmp_path / "linear.pt"
    torch.save(torch.nn.Linear(4, 2).state_dict(), linear)
    assert unsafe_globals_in_checkpoint(linear, is_zip=True) == []
    module = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(4, 2), module)  # a whole module: needs its class to load
    assert unsafe_globals_in_checkpoint(module, is_zip=True)


@pytest.mark.usefixtures("neo4j_db")
@pytest.mark.parametrize("variant", ["protocol0", "protocol2", "protocol5", "torch_zip", "torch_legacy", "register"])
def test_no_pickle_payload_ever_runs(api_factory: Any, api_headers: dict[str, str], tmp_path: Path,
                                     variant: str) -> None:
    import torch
    root = tmp_path / "root"
    root.mkdir()
    marker = tmp_path / "MARKER"
    path = root / "evil.bin"
    payload = {"weight": torch.zeros(2), "x": Exploit(marker)}
    if variant.startswith("protocol"):
        path.write_bytes(pickle.dumps(payload, protocol=int(variant[-1])))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=variant != "torch_legacy")
    client = api_factory(import_roots=(root,))
    if variant == "register":
        response = client.post("/api/models/register", json={"path": "evil.bin"}, headers=api_headers)
    else:
        with path.open("rb") as fh:
            response = client.post("/api/models", files={"file": ("evil.bin", fh)}, headers=api_headers)
    assert response.status_code == 400, response.text
    assert not marker.exists()
    assert client.get("/api/models").json()["total"] == 0


# ------------------------------------------------------------------ hostile uploads


@pytest.mark.usefixtures("neo4j_db")
def test_client_file_names_cannot_choose_where_files_land(api_client: Any, api_headers: dict[str, str],
                                                          tmp_path: Path) -> None:
    family_zoo(1, prefix="fn", children=0, grandchildren=0).write(tmp_path / "src")
    data = (tmp_path / "src" / "fn0.safetensors").read_bytes()
    for filename in ("../../escape.safetensors", "/etc/cron.d/job.safetensors", "..\\..\\win.safetensors"):
        response = api_client.post("/api/models", files={"file": (filename, data)}, headers=api_headers)
        if response.status_code == 201:
            name = response.json()["model"]["name"]
            assert "/" not in name and "\\" not in name and ".." not in name
        else:
            assert response.status_code == 409  # the same bytes again
    stored = [p for p in tmp_path.rglob("*.safetensors") if "src" not in p.parts]
    assert all((tmp_path / "uploads") in p.parents for p in stored)
    assert not (tmp_path / "escape.safetensors").exists()


@pytest.mark.usefixtures("neo4j_db")
def test_declared_content_length_over_the_limit_is_refused_early(api_factory: Any, api_headers: dict[str, str]) -> None:
    client = api_factory(max_upload_bytes=1000)
    response = client.post("/api/models", content=b"x" * 10,
                           headers={**api_headers, "Content-Type": "multipart/form-data; boundary=abc",
                                    "Content-Length": str(10**12)})
    assert response.status_code in (400, 413)


@pytest.mark.usefixtures("neo4j_db")
def test_streamed_body_over_the_limit_is_cut_off(api_factory: Any, api_headers: dict[str, str],
                                                 tmp_path: Path) -> None:
    client = api_factory(max_upload_bytes=50_000)
    boundary = "bnd"

    def chunked() -> Any:  # no Content-Length: the limit must hold while streaming
        yield f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\n\r\n".encode()
        for _ in range(100):
            yield b"\0" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post("/api/models", content=chunked(),
                           headers={**api_headers, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 413
    assert [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()] == []


def test_huge_declared_lengths_do_not_allocate() -> None:
    # BINBYTES8 claiming 2**60 bytes, and BINUNICODE8 likewise: refused, not allocated.
    for opcode in (b"\x8e", b"\x8d"):
        with pytest.raises(ValueError):
            unsafe_globals_in_pickle(b"\x80\x04" + opcode + (2**60).to_bytes(8, "little") + b"xx.")


@pytest.mark.usefixtures("neo4j_db")
def test_malformed_multipart_is_400(api_client: Any, api_headers: dict[str, str]) -> None:
    for body, content_type in ((b"garbage", "multipart/form-data; boundary=abc"),
                               (b"--abc\r\nContent-Disposition: form-data\r\n\r\nx\r\n--abc--\r\n",
                                "multipart/form-data; boundary=abc"),
                               (b"x", "multipart/form-data")):
        response = api_client.post("/api/models", content=body, headers={**api_headers, "Content-Type": content_type})
        assert response.status_code == 400, (body, response.text)


@pytest.mark.usefixtures("neo4j_db")
def test_random_bytes_never_cause_a_server_error(api_client: Any, api_headers: dict[str, str]) -> None:
    @hyp_settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(
        st.binary(min_size=1, max_size=512),
        st.builds(lambda n, tail: n.to_bytes(8, "little") + b"{" + tail,
                  st.integers(0, 2**64 - 1), st.binary(max_size=256)),  # fake safetensors headers
        st.builds(lambda tail: b"\x80\x02" + tail, st.binary(max_size=256)),  # fake pickles
        st.builds(lambda tail: b"PK\x03\x04" + tail, st.binary(max_size=256)),  # fake zips
    ))
    def check(content: bytes) -> None:
        response = api_client.post("/api/models", files={"file": ("x.bin", content)}, headers=api_headers)
        assert response.status_code in (400, 415), (content[:40], response.status_code, response.text)
        assert "Traceback" not in response.text

    check()


# -------------------------------------------------------------- schema-driven fuzzing


@pytest.mark.usefixtures("neo4j_db")
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_generated_input_causes_a_server_error(api_factory: Any, api_key: str, tmp_path: Path,
                                                  mode: str) -> None:
    """Schemathesis generates requests for every operation from the OpenAPI schema (valid
    ones, then invalid ones); none may get a 5xx or a response outside the schema."""
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    client = api_factory(import_roots=(tmp_path,))
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance,
              status_code_conformance]
    generation = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17
    for operation in operations:
        @hyp_settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy(generation_mode=generation))
        def check(case: Any) -> None:
            case.call_and_validate(headers={"X-API-Key": api_key}, checks=checks)

        try:
            check()
        except Unsatisfiable:  # an operation without parameters has no invalid variant
            assert mode == "negative", operation.label
