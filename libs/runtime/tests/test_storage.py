"""The claim-check result store: a real local folder, and Cloud Storage against a fake of its client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc

from captionqc.runtime.storage import (
    GcsResultStore,
    LocalResultStore,
    ResultNotFound,
    StorageUnavailable,
    result_store_from_uri,
)
from captionqc.runtime.testing.gcs import FakeGcs
from captionqc.schemas import FailureReason

RESULT = json.dumps({"segments": [{"text": "Good evening"}]}).encode()


def test_local_round_trip(tmp_path: Path) -> None:
    store = LocalResultStore(tmp_path / "results")
    uri = store.put_json("ocr/6f1c/rapidocr-1.4.4.json", RESULT)
    assert uri.startswith("file://")
    assert uri.endswith("/results/ocr/6f1c/rapidocr-1.4.4.json")
    assert store.get_json(uri) == RESULT
    # The same key again (a redelivered job) replaces the result, leaving no temp files behind.
    assert store.put_json("ocr/6f1c/rapidocr-1.4.4.json", b"{}") == uri
    assert store.get_json(uri) == b"{}"
    assert [p.name for p in (tmp_path / "results/ocr/6f1c").iterdir()] == ["rapidocr-1.4.4.json"]


def test_local_missing_result(tmp_path: Path) -> None:
    store = LocalResultStore(tmp_path)
    with pytest.raises(ResultNotFound) as err:
        store.get_json((tmp_path / "ocr/none.json").as_uri())
    assert err.value.reason is FailureReason.RESULT_MISSING


@pytest.mark.parametrize("key", ["../escape.json", "/abs.json", "a/../../b.json", "", "a//b.json"])
def test_local_refuses_bad_keys(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="invalid result key"):
        LocalResultStore(tmp_path).put_json(key, RESULT)


def test_local_refuses_uris_outside_its_folder(tmp_path: Path) -> None:
    (tmp_path / "other.json").write_bytes(b"{}")
    store = LocalResultStore(tmp_path / "results")
    with pytest.raises(ValueError, match="outside"):
        store.get_json((tmp_path / "other.json").as_uri())


def test_gcs_round_trip_against_a_fake_client() -> None:
    gcs = FakeGcs()
    store = result_store_from_uri("gs://captionqc-results/prod/", gcs_client=gcs)
    assert isinstance(store, GcsResultStore)
    uri = store.put_json("ocr/6f1c.json", RESULT)
    assert uri == "gs://captionqc-results/prod/ocr/6f1c.json"
    assert gcs.objects == {("captionqc-results", "prod/ocr/6f1c.json"): RESULT}
    assert gcs.content_types[("captionqc-results", "prod/ocr/6f1c.json")] == "application/json"
    assert store.get_json(uri) == RESULT


def test_gcs_missing_and_transient_failures() -> None:
    gcs = FakeGcs()
    store = GcsResultStore("captionqc-results", client=gcs)
    with pytest.raises(ResultNotFound):
        store.get_json("gs://captionqc-results/ocr/none.json")
    with pytest.raises(ValueError, match="not in gs://captionqc-results"):
        store.get_json("gs://other-bucket/ocr/none.json")
    gcs.fail = gexc.ServiceUnavailable("try again")
    with pytest.raises(StorageUnavailable):
        store.put_json("ocr/x.json", RESULT)


def test_store_is_chosen_by_the_results_uri(tmp_path: Path) -> None:
    assert isinstance(result_store_from_uri(str(tmp_path)), LocalResultStore)
    local = result_store_from_uri(tmp_path.as_uri())
    assert isinstance(local, LocalResultStore)
    assert local.root == tmp_path.resolve()
    with pytest.raises(ValueError, match="unsupported results URI scheme"):
        result_store_from_uri("s3://bucket/x")
