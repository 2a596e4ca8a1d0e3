"""Where the bytes of uploads and letters live (DOCUMENT_STORAGE): PostgreSQL, a folder or an S3 object store.

Objects are named by their sha256, never by the uploader's file name: the same bytes are one object, a
write is idempotent, and a name cannot reach outside the folder or bucket. Metadata stays in PostgreSQL.
"""

import asyncio
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from services.documents.domain import CheckedFile
from services.documents.settings import DocumentsSettings

SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Stored:
    """Where a file's bytes are: `postgres` (the row's bytea column, no key), `folder` or `s3` under `key`."""

    storage: str
    key: str | None = None


IN_POSTGRES = Stored("postgres")


class StorageUnavailable(ConnectionError):
    """The folder or object store could not be written or read now: transient, try again."""


class BlobStore(Protocol):
    """Bytes outside PostgreSQL, by sha256. `put` returns only once the bytes are durable."""

    name: str

    async def put(self, sha256: str, content: bytes, content_type: str) -> str:
        """Store the bytes; the key the document row keeps."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The bytes under `key`, None when there are none."""
        ...


def _checked(sha256: str) -> str:
    if not SHA256.match(sha256):
        raise ValueError("an object is named by a lowercase hex sha256")
    return sha256


class FolderStore:
    """A directory (a mounted volume): `<root>/<first two hex digits>/<sha256>`, written atomically."""

    name = "folder"

    def __init__(self, root: Path) -> None:
        self.root = root

    async def put(self, sha256: str, content: bytes, content_type: str) -> str:
        key = f"{_checked(sha256)[:2]}/{sha256}"
        await asyncio.to_thread(self._write, self.root / key, content)
        return key

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageUnavailable("the document folder cannot be read") from exc

    def _path(self, key: str) -> Path:
        prefix, _, sha256 = key.partition("/")
        if prefix != _checked(sha256)[:2]:
            raise ValueError("not a key of this folder")
        return self.root / key

    def _write(self, path: Path, content: bytes) -> None:
        """Temp file in the same folder, fsync, rename, fsync the folder: a reader never sees a partial file."""
        if path.is_file() and path.stat().st_size == len(content):
            return  # the same sha256 is the same bytes
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
            try:
                with open(temp, "xb") as out:
                    out.write(content)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp, path)
            finally:
                temp.unlink(missing_ok=True)
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            raise StorageUnavailable("the document folder cannot be written") from exc


class S3Store:
    """An S3-compatible bucket (AWS S3, MinIO, Ceph RGW…) through boto3, its blocking calls in threads.

    boto3 rather than aiobotocore: it is the AWS SDK itself, its clients are thread-safe, and it does not
    pin botocore to one version the way aiobotocore must; a call per upload in a thread costs little.
    """

    name = "s3"

    def __init__(self, settings: DocumentsSettings) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as error:
            raise RuntimeError("DOCUMENT_STORAGE=s3 needs boto3: install tessera[s3]") from error

        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix
        secret = settings.s3_secret_access_key
        self._client: Any = boto3.client(
            "s3", endpoint_url=settings.s3_endpoint_url or None, region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=Config(connect_timeout=settings.http_timeout_seconds, read_timeout=settings.http_timeout_seconds,
                          retries={"mode": "standard", "max_attempts": 3},
                          s3={"addressing_style": settings.s3_addressing_style}))

    async def put(self, sha256: str, content: bytes, content_type: str) -> str:
        from botocore.exceptions import ClientError

        key = f"{self.prefix}{_checked(sha256)}"
        try:
            await self._call("put_object", Bucket=self.bucket, Key=key, Body=content, ContentType=content_type)
        except ClientError as exc:
            raise StorageUnavailable(f"the object store refused a write ({_code(exc)})") from None
        return key

    async def get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            response = await self._call("get_object", Bucket=self.bucket, Key=key)
            return await self._call_on(response["Body"], "read")
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise StorageUnavailable(f"the object store refused a read ({_code(exc)})") from None

    async def _call(self, operation: str, **params: Any) -> Any:
        return await self._call_on(self._client, operation, **params)

    @staticmethod
    async def _call_on(target: Any, operation: str, **params: Any) -> Any:
        from botocore.exceptions import BotoCoreError

        try:
            return await asyncio.to_thread(getattr(target, operation), **params)
        except BotoCoreError as exc:  # endpoint unreachable, timeouts, a body cut short
            raise StorageUnavailable(f"the object store did not answer ({type(exc).__name__})") from None

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", "unknown"))


def blob_store(settings: DocumentsSettings) -> BlobStore | None:
    """The configured store outside PostgreSQL; None for DOCUMENT_STORAGE=postgres (bytes in a bytea column)."""
    if settings.document_storage == "folder":
        return FolderStore(settings.document_folder)
    if settings.document_storage == "s3":
        return S3Store(settings)
    return None


async def keep(blobs: BlobStore | None, checked: CheckedFile, content: bytes) -> Stored:
    """Write the bytes before the row that refers to them is committed (PostgreSQL: the row holds them).

    If that transaction then fails, the object stays without a row: an orphan, harmless (never listed or
    served) and reused by a retry of the same bytes, since its name is their sha256.
    """
    if blobs is None:
        return IN_POSTGRES
    return Stored(blobs.name, await blobs.put(checked.sha256, content, checked.content_type))
