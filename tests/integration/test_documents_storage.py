"""Where uploaded bytes live (R-D2): a folder and an S3-compatible object store, end to end through the
documents service's HTTP upload and download, with the real broker and database.

The S3 store is moto's ThreadedMotoServer: a real HTTP S3 endpoint the service reaches with boto3.
"""

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from shared import topics
from shared.testing import EventLog, ServiceProcess, free_port, publish, service_auth, worker_auth
from tests.factories import person_data, referral_message, unique_referral, unique_seed
from tests.integration.test_documents_service import png_bytes

BUCKET = "tessera-documents"
REGION = "eu-west-2"
CREDENTIALS = {"S3_ACCESS_KEY_ID": "test-key-id", "S3_SECRET_ACCESS_KEY": "test-secret"}
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    bucket_client(url).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield url
    server.stop()


def bucket_client(url: str):
    return boto3.client("s3", endpoint_url=url, region_name=REGION, aws_access_key_id=CREDENTIALS["S3_ACCESS_KEY_ID"],
                        aws_secret_access_key=CREDENTIALS["S3_SECRET_ACCESS_KEY"])


async def documents_with(infra, tmp: Path, referrals: ServiceProcess, **env: str) -> ServiceProcess:
    """A documents process of its own with another DOCUMENT_STORAGE (same database and consumer groups, left
    when the test stops it); its log goes to its own folder."""
    log_dir = infra.log_dir / tmp.name
    log_dir.mkdir(exist_ok=True)
    process = ServiceProcess("documents", {**infra.env, "REFERRALS_URL": referrals.url,
                                           "WORKFLOW_URL": f"http://127.0.0.1:{free_port()}", **env}, log_dir)
    process.start()
    try:
        await process.ready()
    except BaseException:  # never leave a member in documents' consumer groups that no test will stop
        process.stop()
        raise
    return process


@pytest.fixture
async def folder_documents(infra, referrals, tmp_path) -> AsyncIterator[tuple[ServiceProcess, Path]]:
    root = tmp_path / "uploads"
    process = await documents_with(infra, tmp_path, referrals, DOCUMENT_STORAGE="folder", DOCUMENT_FOLDER=str(root))
    yield process, root
    process.stop()


@pytest.fixture
async def s3_documents(infra, referrals, s3_endpoint, tmp_path) -> AsyncIterator[ServiceProcess]:
    process = await documents_with(
        infra, tmp_path, referrals, DOCUMENT_STORAGE="s3", S3_BUCKET=BUCKET,
        S3_ENDPOINT_URL=s3_endpoint, S3_REGION=REGION, S3_ADDRESSING_STYLE="path", **CREDENTIALS)
    yield process
    process.stop()


@pytest.fixture
async def dead_s3_documents(infra, referrals, tmp_path) -> AsyncIterator[ServiceProcess]:
    process = await documents_with(
        infra, tmp_path, referrals, DOCUMENT_STORAGE="s3", S3_BUCKET=BUCKET,
        S3_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}", S3_REGION=REGION, S3_ADDRESSING_STYLE="path",
        HTTP_TIMEOUT_SECONDS="1", **CREDENTIALS)
    yield process
    process.stop()


@pytest.fixture
async def doc_events(infra) -> AsyncIterator[EventLog]:
    async with EventLog(infra.bootstrap, [topics.DOCUMENTS_EVENTS]) as log:
        yield log


async def new_person(infra, events: EventLog) -> str:
    data = unique_referral(person=person_data(unique_seed()))
    envelope = referral_message(data)
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [(data["referral_id"], envelope.to_bytes())])
    [accepted] = await events.wait_for(lambda s: s.caused_by(envelope.id) and s.type == "referral.accepted")
    return accepted.data["person_id"]


async def upload(service: ServiceProcess, person_id: str, name: str, content: bytes, kind: str) -> httpx.Response:
    async with httpx.AsyncClient(auth=worker_auth("gso-1", person_id=person_id), base_url=service.url,
                                 timeout=30) as http:
        return await http.post(f"/people/{person_id}/documents", files={"file": (name, content, "text/plain")},
                               data={"type": kind})


async def download(service: ServiceProcess, path: str) -> httpx.Response:
    async with httpx.AsyncClient(auth=service_auth(), base_url=service.url) as http:
        return await http.get(path)


async def test_R_D2_folder_storage_keeps_the_bytes_in_a_file_named_by_sha256_not_by_the_users_name(
        infra, folder_documents, events, doc_events, db):
    service, root = folder_documents
    person_id = await new_person(infra, events)
    png = png_bytes()
    sha = hashlib.sha256(png).hexdigest()
    created = await upload(service, person_id, "../../../etc/passwd front door.png", png, "photo")
    assert created.status_code == 201, created.text
    doc = created.json()
    assert (doc["sha256"], doc["size"], doc["content_type"]) == (sha, len(png), "image/png")
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files == [root / sha[:2] / sha] and files[0].read_bytes() == png  # no temp file, no user name
    row = await db.fetchrow("SELECT storage, storage_key, content FROM documents.document_files"
                            " WHERE document_id = $1", uuid.UUID(doc["document_id"]))
    assert (row["storage"], row["storage_key"], row["content"]) == ("folder", f"{sha[:2]}/{sha}", None)
    served = await download(service, f"/documents/{doc['document_id']}")
    assert served.status_code == 200 and served.content == png and served.headers["x-document-sha256"] == sha
    attached = await doc_events.wait_for(
        lambda s: s.type == "document.attached" and s.data.get("document_id") == doc["document_id"])
    assert len({a.envelope.id for a in attached}) == 1  # one event (delivered at least once)
    assert png not in attached[0].value  # bytes never travel on Kafka

    # the same bytes again: a second document, one file
    again = await upload(service, person_id, "copy.png", png, "photo")
    assert again.status_code == 201 and again.json()["document_id"] != doc["document_id"]
    assert [p for p in root.rglob("*") if p.is_file()] == files

    # bytes changed behind the service's back are refused, not served
    files[0].write_bytes(png[:-1] + b"\x00")
    tampered = await download(service, f"/documents/{doc['document_id']}")
    assert tampered.status_code == 500 and "sha256" in tampered.json()["detail"]


async def test_R_D2_s3_storage_keeps_the_bytes_as_an_object_and_serves_them_back(
        infra, s3_documents, s3_endpoint, events, db):
    person_id = await new_person(infra, events)
    sha = hashlib.sha256(PDF).hexdigest()
    created = await upload(s3_documents, person_id, "signed consent.pdf", PDF, "consent_form")
    assert created.status_code == 201, created.text
    doc = created.json()
    stored = bucket_client(s3_endpoint).get_object(Bucket=BUCKET, Key=f"documents/{sha}")
    assert stored["Body"].read() == PDF and stored["ContentType"] == "application/pdf"
    row = await db.fetchrow("SELECT storage, storage_key, content FROM documents.document_files"
                            " WHERE document_id = $1", uuid.UUID(doc["document_id"]))
    assert (row["storage"], row["storage_key"], row["content"]) == ("s3", f"documents/{sha}", None)
    for path in (f"/documents/{doc['document_id']}", f"/documents/{doc['document_id']}.pdf"):
        served = await download(s3_documents, path)
        assert served.status_code == 200 and served.content == PDF, path
    listed = (await download(s3_documents, f"/people/{person_id}/documents")).json()
    assert [(d["document_id"], d["kind"], d["sha256"]) for d in listed] == [(doc["document_id"], "upload", sha)]


async def test_R_D2_an_object_store_that_cannot_be_reached_keeps_no_document_row(
        infra, dead_s3_documents, events, db):
    person_id = await new_person(infra, events)
    refused = await upload(dead_s3_documents, person_id, "photo.png", png_bytes(), "photo")
    assert refused.status_code == 503 and "could not be stored" in refused.json()["detail"]
    assert await db.fetchval("SELECT count(*) FROM documents.documents WHERE person_id = $1", person_id) == 0
