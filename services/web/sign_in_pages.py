"""Signing in and out: the sign-in form, password sign-in, council sign-in (OpenID Connect), sign-out."""

from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.web import auth, oidc, store
from services.web.pages import back, checked_form, current_user, local_path, pool, settings_of, templates

router = APIRouter()


@router.get("/login")
async def login_page(request: Request, next: str = "/work", failed: bool = False,
                     oidc_problem: str = "") -> HTMLResponse:
    return await _sign_in_form(request, next, failed=failed, oidc_problem=oidc_problem,
                               status_code=401 if failed or oidc_problem else 200)


async def _sign_in_form(request: Request, next: str, *, status_code: int, failed: bool = False,
                        oidc_problem: str = "", throttled: bool = False) -> HTMLResponse:
    token, cookie = request.app.state.sessions.login_csrf()
    settings = settings_of(request)
    demo = [u for u in await store.all_users(pool(request)) if u["demo"]] if settings.demo_accounts else []
    response = templates.TemplateResponse(request, "login.html", {
        "user": None, "next": local_path(next), "csrf": token, "failed": failed, "throttled": throttled,
        "demo_users": demo, "demo_password": settings.web_demo_password if demo else None,
        "oidc": request.app.state.oidc is not None, "oidc_problem": oidc_problem,
    }, status_code=status_code)
    response.set_cookie(auth.LOGIN_CSRF_COOKIE, cookie, httponly=True, samesite="strict",
                        secure=settings.cookies_secure, max_age=3600)
    return response


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    sessions = request.app.state.sessions
    settings = settings_of(request)
    target = local_path(str(form.get("next", "/work")))
    if not sessions.login_csrf_ok(request.cookies.get(auth.LOGIN_CSRF_COOKIE), str(form.get("csrf_token", ""))):
        return back(f"/login?{urlencode({'next': target, 'failed': 'true'})}")
    outcome, user_id = await auth.sign_in(pool(request), settings, str(form.get("username", ""))[:200],
                                          str(form.get("password", ""))[:1000], client_address(request))
    if outcome is auth.SignIn.THROTTLED:
        response = await _sign_in_form(request, target, throttled=True, status_code=429)
        response.headers["Retry-After"] = str(max(1, round(settings.web_sign_in_window_seconds)))
        return response
    if user_id is None:
        return back(f"/login?{urlencode({'next': target, 'failed': 'true'})}")
    signed_in = back(target)
    signed_in.set_cookie(auth.SESSION_COOKIE, await sessions.open(pool(request), user_id), httponly=True,
                         samesite="lax", secure=settings.cookies_secure)
    signed_in.delete_cookie(auth.LOGIN_CSRF_COOKIE)
    return signed_in


@router.get("/login/oidc")
async def oidc_login(request: Request, next: str = "/work") -> Response:
    """Send the browser to the council's authorize URL (authorization code, PKCE, state and nonce)."""
    provider: oidc.Oidc | None = request.app.state.oidc
    if provider is None:
        raise HTTPException(404, "council sign-in is not set up here")
    settings = settings_of(request)
    redirect_uri = settings.web_oidc_redirect_uri or str(request.url_for("oidc_callback"))
    try:
        url, cookie = await provider.start(redirect_uri, local_path(next))
    except oidc.SignInFailed as exc:
        return back(f"/login?{urlencode({'next': local_path(next), 'oidc_problem': str(exc)})}")
    response = RedirectResponse(url, 303)
    response.set_cookie(oidc.STATE_COOKIE, cookie, httponly=True, samesite="lax", max_age=oidc.STATE_MAX_AGE,
                        secure=settings.cookies_secure, path="/login/oidc")
    return response


@router.get("/login/oidc/callback", name="oidc_callback")
async def oidc_callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    """The issuer sends the browser back here: check the state, swap the code, check the ID token, sign in."""
    provider: oidc.Oidc | None = request.app.state.oidc
    if provider is None:
        raise HTTPException(404, "council sign-in is not set up here")
    settings = settings_of(request)
    target = "/work"
    try:
        if error:
            raise oidc.SignInFailed(f"the council sign-in service said: {error[:100]}")
        flow = provider.pending(request.cookies.get(oidc.STATE_COOKIE), state)
        target = local_path(str(flow.get("next") or "/work"))
        claims, id_token = await provider.finish(flow, code)
        user_id = await oidc.local_user(pool(request), settings, claims, client_address(request))
    except oidc.SignInFailed as exc:
        async with pool(request).acquire() as conn, conn.transaction():
            await store.audit_act(conn, "account.sign_in_failed", actor="anonymous", details={
                "address": client_address(request), "with": "council", "why": str(exc)})
        response = back(f"/login?{urlencode({'next': target, 'oidc_problem': str(exc)})}")
        response.delete_cookie(oidc.STATE_COOKIE, path="/login/oidc")
        return response
    response = back(target)
    response.set_cookie(auth.SESSION_COOKIE,
                        await request.app.state.sessions.open(pool(request), user_id, id_token),
                        httponly=True, samesite="lax", secure=settings.cookies_secure)
    response.delete_cookie(oidc.STATE_COOKIE, path="/login/oidc")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    user = await current_user(request)
    await checked_form(request, user)
    id_token = await request.app.state.sessions.close(pool(request), request.cookies.get(auth.SESSION_COOKIE))
    async with pool(request).acquire() as conn, conn.transaction():
        await store.audit_act(conn, "account.signed_out", actor=user.user_id, roles=user.roles,
                              object_id=user.user_id, details={"address": client_address(request)})
    provider: oidc.Oidc | None = request.app.state.oidc
    target = "/login"
    if id_token and provider is not None:  # a council session: the provider ends its own session too
        target = await provider.logout_url(id_token, str(request.url_for("login_page"))) or target
    response = back(target)
    response.delete_cookie(auth.SESSION_COOKIE)
    response.headers["Clear-Site-Data"] = '"storage"'  # unsaved drafts do not outlive the session
    return response
