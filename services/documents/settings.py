"""Settings of the documents service, each read from the environment variable of the same name."""

from pathlib import Path
from typing import Literal

from shared.settings import Settings


class DocumentsSettings(Settings):
    """The shared settings plus where steps are read, upload limits, file storage and the PDF font."""

    # `GET /steps/{id}` of the workflow service: the form and values a document keeps (R-D1).
    workflow_url: str = "http://127.0.0.1:8082"
    http_timeout_seconds: float = 5.0
    # R-D2: uploads larger than this are refused with 413; only these sniffed types are kept.
    upload_max_bytes: int = 10 * 1024 * 1024
    upload_allowed_types: tuple[str, ...] = ("image/jpeg", "image/png", "application/pdf")
    # Images beyond this many pixels are refused (a "decompression bomb" with a tiny file size).
    upload_max_image_pixels: int = 100_000_000
    # Where uploaded bytes live. "postgres": bytea rows in this service's schema (the embedded default
    # and small deployments). A folder or object store plugs in behind store.save_file / store.load_file.
    document_storage: Literal["postgres"] = "postgres"
    # A folder with DejaVuSans.ttf and DejaVuSans-Bold.ttf (Debian: fonts-dejavu-core) for text beyond
    # Latin-1; without it the PDFs use Bitstream Vera, which the reportlab wheel ships.
    pdf_font_dir: Path = Path("/usr/share/fonts/truetype/dejavu")
