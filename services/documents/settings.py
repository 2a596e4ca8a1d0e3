"""Settings of the documents service, each read from the environment variable of the same name."""

from pathlib import Path
from typing import Literal, Self

from pydantic import SecretStr, model_validator

from shared.settings import Settings


class DocumentsSettings(Settings):
    """The shared settings plus where steps are read, upload limits, file storage and the PDF font."""

    # `GET /steps/{id}` of the workflow service: the form and values a document keeps (R-D1).
    workflow_url: str = "http://127.0.0.1:8082"
    # R-D2: uploads larger than this are refused with 413; only these sniffed types are kept.
    upload_max_bytes: int = 10 * 1024 * 1024
    upload_allowed_types: tuple[str, ...] = ("image/jpeg", "image/png", "application/pdf")
    # Images beyond this many pixels are refused (a "decompression bomb" with a tiny file size).
    upload_max_image_pixels: int = 100_000_000
    # Where the bytes of uploads and letters live; their metadata is always in PostgreSQL.
    # "postgres": a bytea column (the embedded default, small deployments). "folder": files named by
    # sha256 under DOCUMENT_FOLDER (a mounted volume). "s3": an S3-compatible bucket (production).
    document_storage: Literal["postgres", "folder", "s3"] = "postgres"
    document_folder: Path = Path(".run/uploads")
    s3_bucket: str = ""
    # empty: AWS's own endpoint for the region; else MinIO, Ceph RGW or another S3-compatible store
    s3_endpoint_url: str = ""
    s3_region: str = "eu-west-2"
    s3_prefix: str = "documents/"
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    # empty: boto3's own chain (IAM role, web identity, instance profile)
    s3_access_key_id: str = ""
    s3_secret_access_key: SecretStr | None = None
    # A folder with DejaVuSans.ttf and DejaVuSans-Bold.ttf (Debian: fonts-dejavu-core) for text beyond
    # Latin-1; without it the PDFs use Bitstream Vera, which the reportlab wheel ships.
    pdf_font_dir: Path = Path("/usr/share/fonts/truetype/dejavu")

    @model_validator(mode="after")
    def _storage_is_complete(self) -> Self:
        if self.document_storage == "s3" and not self.s3_bucket:
            raise ValueError("DOCUMENT_STORAGE=s3 needs S3_BUCKET")
        if self.document_storage == "s3" and bool(self.s3_access_key_id) != bool(self.s3_secret_access_key):
            raise ValueError("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY are set together or not at all")
        return self
