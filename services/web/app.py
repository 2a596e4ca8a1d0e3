"""Tessera desk: sign-in, current work, step forms, manager views; commands with the signed-in user as actor."""

import asyncio
import secrets
from pathlib import Path

from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.web import (
    accounts,
    auth,
    dashboard_pages,
    directory,
    manager_pages,
    oidc,
    pages,
    person_pages,
    relationship_pages,
    rule_book,
    sign_in_pages,
    step_pages,
    store,
)
from services.web.clients import Allocation, Clocks, Documents, Notifications, Readers, Referrals, Workflow
from services.web.commands import CommandBus
from services.web.settings import WebSettings
from shared.broker import make_producer
from shared.service import Runtime, create_app

HERE = Path(__file__).parent
settings = WebSettings(service_name="web")
if refusal := settings.refusal():
    raise SystemExit(f"tessera web refuses to start: {refusal}")
timeout = settings.http_timeout_seconds
readers = Readers(
    referrals=Referrals(settings.referrals_url, timeout), workflow=Workflow(settings.workflow_url, timeout),
    allocation=Allocation(settings.allocation_url, timeout),
    notifications=Notifications(settings.notifications_url, timeout),
    documents=Documents(settings.documents_url, max(timeout, 30.0)),  # a PDF is rendered on request
    clocks=Clocks(settings.clocks_url, timeout),
)


async def _start(runtime: Runtime) -> None:
    assert runtime.pool is not None
    runtime.tasks.append(asyncio.create_task(asyncio.to_thread(pages.compile_templates), name="compile-templates"))
    key = settings.web_secret_key or await store.secret(runtime.pool, "session_key", secrets.token_urlsafe(48))
    app.state.sessions = auth.Sessions(settings, key)
    app.state.oidc = oidc.Oidc(settings, key) if settings.oidc_enabled else None
    if settings.demo_accounts:
        await auth.seed_demo_users(runtime.pool, settings.web_demo_users_file, settings.web_demo_password)
    else:
        await auth.disable_demo_users(runtime.pool)
    await directory.list_changed(runtime.pool)
    producer = make_producer(settings)
    await producer.start()
    app.state.producer = producer
    assert runtime.signer is not None and runtime.verifier is not None
    bus = CommandBus(settings, producer, runtime.signer, runtime.verifier)
    await bus.start()
    app.state.bus = bus
    runtime.tasks.append(asyncio.create_task(bus.run(), name="command-outcomes"))


async def _stop(runtime: Runtime) -> None:
    await app.state.producer.stop()


app = create_app(settings, service_dir=HERE, on_pool_ready=[_start], on_stopping=[_stop],
                 description=__doc__ or "")
app.state.settings = settings
app.state.readers = readers
app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
app.include_router(sign_in_pages.router)
app.include_router(pages.router)
app.include_router(step_pages.router)
app.include_router(manager_pages.router)
app.include_router(dashboard_pages.router)
app.include_router(person_pages.router)
app.include_router(relationship_pages.router)
app.include_router(accounts.router)
app.include_router(rule_book.router)
pages.install_handlers(app)


class SecurityHeaders:
    """The headers every answer carries, added as the response starts (a plain ASGI middleware: Starlette's
    BaseHTTPMiddleware cost the desk ~0.5 ms of CPU a request, measured)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault(
                    "Content-Security-Policy",
                    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if not settings.development:  # a browser that has seen the desk over HTTPS never falls back to HTTP
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
                if not static:
                    headers.setdefault("Cache-Control", "no-store")  # pages hold personal data
            await send(message)

        await self.app(scope, receive, with_headers)


app.add_middleware(SecurityHeaders)
