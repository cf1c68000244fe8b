"""The query API with the app's lifespan running (real Postgres, real emulator)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import io
import json
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from captionqc.runtime.tenants import Tenant, add_tenant
from captionqc.schemas import Stage, to_pubsub
from captionqc.schemas.reasons import Refusal
from captionqc.schemas.status_api import JobFindings, JobPage, JobTimeline, JobView
from captionqc.status.service import Incoming, StatusService
from captionqc.status.tables import dead_letters

from .helpers import (
    asr_completed,
    crosscheck_completed,
    failed,
    later,
    new_job_id,
    ocr_completed,
    progress,
    requested,
    token,
)
from .test_consumer import eventually


async def project(service: StatusService, *events: Any) -> None:
    await service.project([Incoming(e) for e in events])


async def test_auth_and_tenant_isolation(client: httpx.AsyncClient, app_service: StatusService) -> None:
    job_id = new_job_id()
    await project(app_service, requested(job_id, "acme"))
    assert (await client.get(f"/v1/jobs/{job_id}", headers=token("acme"))).status_code == 200
    for path in ("", "/findings", "/events", "/stream", "/findings?format=vtt"):
        response = await client.get(f"/v1/jobs/{job_id}{path}", headers=token("beta"))
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"
    assert (await client.get(f"/v1/jobs/{job_id}")).status_code == 401
    forbidden = await client.get(f"/v1/jobs/{job_id}", headers=token("acme", scopes=("jobs:write",)))
    assert forbidden.status_code == 403
    page = JobPage.model_validate_json((await client.get("/v1/jobs", headers=token("beta"))).content)
    assert page.items == []


async def test_job_view(client: httpx.AsyncClient, app_service: StatusService) -> None:
    job_id = new_job_id()
    await project(
        app_service,
        requested(job_id, trace_id="c" * 32),
        progress(job_id, Stage.OCR, 0.5),
        asr_completed(job_id, at=later(20)),
    )
    view = JobView.model_validate_json((await client.get(f"/v1/jobs/{job_id}", headers=token())).content)
    assert view.state.value == "running"
    assert view.trace_id == "c" * 32
    assert view.stages.ocr.progress == 0.5
    assert view.stages.asr.state.value == "completed"
    assert view.stages.asr.seconds == 20.0
    assert view.progress == pytest.approx(0.45 * 0.5 + 0.45)
    assert view.media_uri == "gs://media/clip.mp4"


async def test_a_refused_webhook_is_visible_on_the_job(client: httpx.AsyncClient, app_service: StatusService) -> None:
    refused, running, plain = new_job_id(), new_job_id(), new_job_id()
    # Credentials in the URL break the callback policy whatever the allow-list says: never sent.
    hook = "https://user:pass@127.0.0.1/hook"
    await project(app_service, requested(running, callback_url=hook), requested(plain))
    await project(app_service, requested(refused, callback_url=hook), crosscheck_completed(refused))

    async def callback_of(job_id: str) -> dict[str, Any] | None:
        body = (await client.get(f"/v1/jobs/{job_id}", headers=token())).json()
        callback: dict[str, Any] | None = body["callback"]
        return callback

    async def settled() -> bool:
        callback = await callback_of(refused)
        return callback is not None and callback["state"] != "pending"

    await eventually(settled, timeout=10)
    callback = await callback_of(refused)
    assert callback is not None
    assert (callback["state"], callback["attempts"], callback["last_status"]) == ("refused", 0, None)
    assert callback["reason"] in {r.value for r in Refusal}
    assert callback["message"].startswith(f"{callback['reason']}: ")
    assert await callback_of(running) == {
        "state": "pending",
        "attempts": 0,
        "last_status": None,
        "reason": None,
        "message": None,
    }
    assert await callback_of(plain) is None
    page = JobPage.model_validate_json((await client.get("/v1/jobs", headers=token())).content)
    listed = {j.job_id: j.callback.state.value if j.callback else None for j in page.items}
    assert (listed[refused], listed[running], listed[plain]) == ("refused", "pending", None)


async def test_list_filters_and_cursor_pagination(client: httpx.AsyncClient, app_service: StatusService) -> None:
    ids = [new_job_id() for _ in range(5)]
    for i, job_id in enumerate(ids):
        await project(app_service, requested(job_id, at=later(i * 60)))
    await project(app_service, crosscheck_completed(ids[1]), failed(ids[3], Stage.ASR))
    await project(app_service, requested(new_job_id(), "beta"))

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = JobPage.model_validate_json((await client.get("/v1/jobs", params=params, headers=token())).content)
        seen += [j.job_id for j in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(ids))  # newest first, each once, other tenants' jobs never

    def ids_of(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [j.job_id for j in JobPage.model_validate_json(response.content).items]

    finished = await client.get("/v1/jobs", params={"state": ["completed", "failed"]}, headers=token())
    assert ids_of(finished) == [ids[3], ids[1]]
    window = {"created_after": later(60).isoformat(), "created_before": later(180).isoformat()}
    assert ids_of(await client.get("/v1/jobs", params=window, headers=token())) == [ids[2], ids[1]]

    bad = await client.get("/v1/jobs", params={"cursor": "not-a-cursor"}, headers=token())
    assert bad.status_code == 422
    assert bad.json()["details"][0]["type"] == "invalid_id"
    assert (await client.get("/v1/jobs", params={"limit": 101}, headers=token())).status_code == 422
    assert (await client.get("/v1/jobs", params={"state": "sleeping"}, headers=token())).status_code == 422


def refusal(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert set(body) == {"error", "message", "request_id", "details"}, body  # the one error shape
    return response.status_code, body["error"], body["details"][0]["type"]


async def test_ids_in_paths_must_be_job_ids(client: httpx.AsyncClient, app_service: StatusService) -> None:
    job_id = new_job_id()
    await project(app_service, requested(job_id))
    job_routes = sorted(p for p in (await client.get("/openapi.json")).json()["paths"] if "{job_id}" in p)
    assert len(job_routes) >= 4  # every job route, including any added later
    for route in job_routes:
        for bad in ("%00", "abc%00def", "not-a-uuid", "%2e%2e", job_id + "0", "x" * 300):
            response = await client.get(route.replace("{job_id}", bad), headers=token())
            assert refusal(response) == (422, "validation_error", "invalid_id"), (route, bad)
            assert bad not in response.text  # never echoed
    # The same id in upper case is the same job.
    assert (await client.get(f"/v1/jobs/{job_id.upper()}", headers=token())).json()["job_id"] == job_id


async def test_cursors_and_query_parameters_are_checked_before_the_database(client: httpx.AsyncClient) -> None:
    nul_inside = base64.urlsafe_b64encode(json.dumps(["2026-01-05T12:00:00+00:00", "a\x00b"]).encode()).decode()
    naive = base64.urlsafe_b64encode(json.dumps(["2026-01-05T12:00:00", new_job_id()]).encode()).decode()
    for cursor in ("\x00", "abc\x00", "not-a-cursor", "=" * 8, "A" * 600, nul_inside, naive):
        response = await client.get("/v1/jobs", params={"cursor": cursor}, headers=token())
        assert refusal(response) == (422, "validation_error", "invalid_id"), cursor
    job_id = new_job_id()
    for path, params in (
        ("/v1/jobs", {"state": "running\x00"}),
        ("/v1/jobs", {"created_after": "2026-01-01\x00"}),
        ("/v1/jobs", {"limit": "1\x07"}),
        ("/v1/jobs", {"unknown\x00": "x"}),
        ("/v1/jobs", {"unknown": "\x1b[2J"}),
        (f"/v1/jobs/{job_id}/findings", {"format": "csv\x00"}),
    ):
        response = await client.get(path, params=params, headers=token())
        assert refusal(response) == (422, "validation_error", "control_character"), params


async def test_findings_as_json_csv_and_vtt(client: httpx.AsyncClient, app_service: StatusService) -> None:
    job_id = new_job_id()
    await project(app_service, requested(job_id), ocr_completed(job_id), crosscheck_completed(job_id))
    url = f"/v1/jobs/{job_id}/findings"

    body = JobFindings.model_validate_json((await client.get(url, headers=token())).content)
    assert [f.id for f in body.findings] == ["f1", "f2"]
    assert body.state.value == "completed"

    response = await client.get(url, params={"format": "csv"}, headers=token())
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["word"] for r in rows] == ["wether", "wind"]
    assert [r["suggestion"] for r in rows] == ["weather", "'=1+1"]  # a formula-looking cell is defused

    vtt = await client.get(url, headers={**token(), "Accept": "text/vtt"})
    assert vtt.headers["content-type"].startswith("text/vtt")
    text = vtt.text
    assert text.startswith("WEBVTT\n")
    assert "00:00:00.000 --> 00:00:02.000\nThe <c.typo.misspelling>wether</c> is fine today" in text
    assert "Rain &lt;later&gt; &amp; <c.typo.wrong_word>wind</c>" in text

    csv_by_accept = await client.get(url, headers={**token(), "Accept": "text/csv;q=0.9, application/xml"})
    assert csv_by_accept.headers["content-type"].startswith("text/csv")
    assert (await client.get(url, headers={**token(), "Accept": "image/png"})).status_code == 406


async def test_vtt_without_captions_uses_the_findings(client: httpx.AsyncClient, app_service: StatusService) -> None:
    job_id = new_job_id()
    await project(app_service, requested(job_id), crosscheck_completed(job_id))
    text = (await client.get(f"/v1/jobs/{job_id}/findings", params={"format": "vtt"}, headers=token())).text
    assert "NOTE" in text
    assert "The <c.typo.misspelling>wether</c> is fine today" in text


async def test_events_timeline(client: httpx.AsyncClient, app_service: StatusService) -> None:
    job_id = new_job_id()
    tick = progress(job_id, Stage.ASR, 0.3, at=later(5))
    await project(app_service, requested(job_id), tick, tick, failed(job_id, Stage.ASR, at=later(9)))
    body = JobTimeline.model_validate_json((await client.get(f"/v1/jobs/{job_id}/events", headers=token())).content)
    assert [e.type for e in body.events] == [
        "captionqc.job.requested",
        "captionqc.asr.progress",
        "captionqc.asr.failed",
    ]
    assert body.events[2].summary.startswith("asr failed (no_audio_stream)")
    assert body.events[1].stage is Stage.ASR


async def test_openapi_documents_every_route(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in ("/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/findings", "/v1/jobs/{job_id}/events",
                 "/v1/jobs/{job_id}/stream", "/healthz", "/readyz"):  # fmt: skip
        assert path in paths, path
    for path in ("/v1/jobs/{job_id}", "/v1/jobs/{job_id}/findings", "/v1/jobs/{job_id}/events"):
        responses = paths[path]["get"]["responses"]
        assert {"200", "401", "403", "404", "422"} <= set(responses), path
        assert responses["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert "406" in paths["/v1/jobs/{job_id}/findings"]["get"]["responses"]
    assert "text/vtt" in paths["/v1/jobs/{job_id}/findings"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in paths["/v1/jobs/{job_id}/stream"]["get"]["responses"]["200"]["content"]
    assert "JobView" in spec["components"]["schemas"]


async def test_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": True, "consumer": True, "workers": True}


async def test_events_on_the_emulator_reach_the_api(
    client: httpx.AsyncClient, app_service: StatusService, pubsub_project: str
) -> None:
    """Real events through the running app's consumer: published, projected, served."""
    from captionqc.runtime.pubsub import EventPublisher

    job_id = new_job_id()
    publisher = EventPublisher(pubsub_project)
    try:
        for event in (
            requested(job_id),
            ocr_completed(job_id),
            asr_completed(job_id),
            crosscheck_completed(job_id),
            crosscheck_completed(job_id),  # a second copy of the final event: a new id, same job
        ):
            await publisher.publish(event)
        # A message that cannot be decoded, naming another job: dead-lettered and recorded, but it proves nothing
        # about that job (anyone can name a job id), so the job is not failed by it.
        broken = new_job_id()
        await publisher.publish(requested(broken))
        data, attrs = to_pubsub(asr_completed(broken))
        await publisher.publish_raw("asr-results", data.replace(b'"words"', b'"wordz"'), attrs)
    finally:
        publisher.close()

    async def done() -> bool:
        a = await client.get(f"/v1/jobs/{job_id}", headers=token())
        async with app_service.sessions() as session:
            letters = (await session.execute(select(dead_letters).where(dead_letters.c.job_id == broken))).all()
        return a.status_code == 200 and a.json()["state"] == "completed" and bool(letters)

    await eventually(done, timeout=30)
    view = JobView.model_validate_json((await client.get(f"/v1/jobs/{job_id}", headers=token())).content)
    assert view.findings_total == 2
    assert view.captions.value == "available"
    broken_view = JobView.model_validate_json((await client.get(f"/v1/jobs/{broken}", headers=token())).content)
    assert broken_view.state.value == "accepted"
    assert broken_view.failure is None


# -- Server-Sent Events, over a real HTTP server on 127.0.0.1 ------------------------------------------------------
@pytest.fixture
async def served(status_app: Any) -> Any:
    # The lifespan already runs (status_app); uvicorn only serves.
    server = uvicorn.Server(
        uvicorn.Config(status_app, host="127.0.0.1", port=0, lifespan="off", log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, timeout=10)


async def read_events(response: httpx.Response, into: list[tuple[str, dict[str, Any]]]) -> None:
    name = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            into.append((name, json.loads(line[6:])))


async def test_stream_sends_progress_then_the_final_state_and_closes(served: str, app_service: StatusService) -> None:
    job_id = new_job_id()
    await project(app_service, requested(job_id))
    events: list[tuple[str, dict[str, Any]]] = []
    async with (
        httpx.AsyncClient(base_url=served, timeout=20) as http,
        http.stream("GET", f"/v1/jobs/{job_id}/stream", headers=token()) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = asyncio.create_task(read_events(response, events))
        await eventually(lambda: _has(events, 1))
        await project(app_service, progress(job_id, Stage.OCR, 0.4))
        await eventually(lambda: _has(events, 2))
        await project(app_service, ocr_completed(job_id), asr_completed(job_id), crosscheck_completed(job_id))
        await asyncio.wait_for(reader, timeout=10)  # the server closed the stream after the final event
    names = [name for name, _ in events]
    assert names[0] == "progress"
    assert names[-1] == "final"
    assert names.count("final") == 1
    assert events[1][1]["stages"]["ocr"]["progress"] == 0.4
    assert events[-1][1]["state"] == "completed"


async def _has(events: list[Any], n: int) -> bool:
    return len(events) >= n


async def test_stream_of_a_finished_job_is_one_final_event(served: str, app_service: StatusService) -> None:
    job_id = new_job_id()
    await project(app_service, requested(job_id), failed(job_id, Stage.OCR))
    async with httpx.AsyncClient(base_url=served, timeout=20) as http:
        response = await http.get(f"/v1/jobs/{job_id}/stream", headers=token())
    assert [line for line in response.text.splitlines() if line.startswith("event:")] == ["event: final"]


async def test_stream_stops_when_the_client_goes_away(served: str, app_service: StatusService) -> None:
    job_id = new_job_id()
    await project(app_service, requested(job_id))
    async with (
        httpx.AsyncClient(base_url=served, timeout=20) as http,
        http.stream("GET", f"/v1/jobs/{job_id}/stream", headers=token()) as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                break
    # The generator noticed the disconnect: no watcher is left behind for the job.
    await eventually(lambda: _no_watchers(app_service, job_id), timeout=5)


async def _no_watchers(service: StatusService, job_id: str) -> bool:
    return job_id not in service.changes._waiters


async def _stream_status(http: httpx.AsyncClient, job_id: str, tenant: str) -> httpx.Response:
    """Open a stream, wait for its first event if it is one, and close it."""
    async with http.stream("GET", f"/v1/jobs/{job_id}/stream", headers=token(tenant)) as response:
        if response.status_code == 200:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    break
        else:
            await response.aread()
        return response


async def test_streams_are_capped_per_tenant(served: str, app_service: StatusService, engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await add_tenant(conn, Tenant(tenant="streamer", max_streams=2))
    job_id, other = new_job_id(), new_job_id()
    await project(app_service, requested(job_id, "streamer"), requested(other, "acme"))
    readers = []  # kept: an abandoned line iterator, once collected, closes its stream
    async with contextlib.AsyncExitStack() as held, httpx.AsyncClient(base_url=served, timeout=20) as http:
        for _ in range(2):
            response = await held.enter_async_context(
                http.stream("GET", f"/v1/jobs/{job_id}/stream", headers=token("streamer"))
            )
            assert response.status_code == 200
            readers.append(response.aiter_lines())
            await anext(readers[-1])
        refused = await _stream_status(http, job_id, "streamer")
        assert refused.status_code == 429
        assert refusal(refused) == (429, "quota_exceeded", "quota_exceeded")
        assert refused.headers["Retry-After"] == "5"
        assert (await _stream_status(http, other, "acme")).status_code == 200  # other tenants are not held back
        assert app_service.streams.open("streamer") == 2
    # Streams whose clients went away give their slots back.
    await eventually(lambda: _no_streams(app_service, "streamer"), timeout=5)
    async with httpx.AsyncClient(base_url=served, timeout=20) as http:
        for _ in range(3):
            assert (await _stream_status(http, job_id, "streamer")).status_code == 200
            await eventually(lambda: _no_streams(app_service, "streamer"), timeout=5)


async def _no_streams(service: StatusService, tenant: str) -> bool:
    return service.streams.open(tenant) == 0
