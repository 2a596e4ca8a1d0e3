"""The documents service: documents of finished steps, PDFs of forms and letters, and uploaded files."""

from pathlib import Path

import yaml

from services.documents import domain, handlers, queries, render, storage
from services.documents.clients import StepReader
from services.documents.settings import DocumentsSettings
from shared.readers import PersonReader
from shared.service import Runtime, create_app

settings = DocumentsSettings(service_name="documents")
templates = yaml.safe_load((Path(__file__).parent / "templates" / "letters.yaml").read_text(encoding="utf-8"))
deps = queries.Deps(
    settings=settings,
    steps=StepReader(settings.workflow_url, settings.http_timeout_seconds),
    people=PersonReader(settings.referrals_url, settings.http_timeout_seconds),
    fonts=render.register_fonts(settings.pdf_font_dir),
    letters={name: domain.LetterTemplate.of(name, raw) for name, raw in templates.items()},
    blobs=storage.blob_store(settings),
)


async def close_blobs(_: Runtime) -> None:
    if isinstance(deps.blobs, storage.S3Store):
        await deps.blobs.close()


app = create_app(
    settings,
    service_dir=Path(__file__).parent,
    routers=[handlers.router],
    queries=queries.router,
    on_stopping=[close_blobs],
    description=__doc__ or "",
)
app.state.deps = deps
app.state.runtime.broker.context.set_global("steps", deps.steps)
app.state.runtime.broker.context.set_global(
    "letter_kit", handlers.LetterKit(people=deps.people, templates=deps.letters, fonts=deps.fonts, blobs=deps.blobs))
