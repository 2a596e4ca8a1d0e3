"""Account management for the administrator: list, create, disable / enable, reset a password.

Every change is audited in `web.account_audit` (who, when, what, listed on the page) and in the web schema's
tamper-evident audit chain. A disabled account cannot sign in and its sessions end at once, as do the sessions
of an account whose password is reset; a council (OIDC) account has no local password, so none can be set; a
demo account can be enabled in development only.
"""

import re
from dataclasses import dataclass, field

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from services.web import auth, directory, store
from services.web.auth import User
from services.web.pages import back, checked_form, current_user, inputs_at_fault, pool, render, set_flash
from shared.teams import is_known, teams

router = APIRouter()
USER_ID = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,62}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[a-z]{2,}$")
MIN_PASSWORD = 12


@dataclass
class NewAccount:
    """A create-account form, checked: every field at fault is named in `problems`."""

    user_id: str
    name: str
    roles: list[str]
    team_ids: list[str]
    password: str
    email: str | None = None
    problems: list[dict[str, str]] = field(default_factory=list)


# the create form's element for each field a refusal names (the error summary links to it, issue #19 §4)
FIELD_IDS = {"user_id": "new-user-id", "name": "new-name", "roles": "new-roles", "teams": "new-teams",
             "email": "new-email", "password": "new-password"}


def password_problems(password: str, field_name: str = "password") -> list[dict[str, str]]:
    if len(password) < MIN_PASSWORD:
        return [{"field": field_name, "message": f"the password must be at least {MIN_PASSWORD} characters"}]
    return []


def check_new_account(user_id: str, name: str, roles: list[str], team_ids: list[str], password: str,
                      email: str = "") -> NewAccount:
    account = NewAccount(user_id.strip().lower(), name.strip(), roles, team_ids, password,
                         email.strip().lower() or None)
    if account.email is not None and not EMAIL.match(account.email):
        account.problems.append({"field": "email", "message": "not an email address"})
    if not USER_ID.match(account.user_id):
        account.problems.append({"field": "user_id", "message": "the user name must be 2 to 63 lower-case"
                                 " letters, digits, dots, dashes or @, starting with a letter or digit"})
    if not account.name or len(account.name) > 200:
        account.problems.append({"field": "name", "message": "the name is required (at most 200 characters)"})
    unknown = sorted(set(roles) - set(auth.ROLE_NAMES))
    if not roles or unknown:
        account.problems.append({"field": "roles", "message": "choose at least one role" if not roles
                                 else f"unknown role(s): {', '.join(unknown)}"})
    unknown_teams = [t for t in team_ids if not is_known(t)]
    if unknown_teams:  # the form offers only the catalogue's teams (shared/teams.yaml)
        account.problems.append({"field": "teams", "message": f"not a known team: {', '.join(unknown_teams)}"})
    account.problems += password_problems(password)
    return account


def administrator(user: User) -> User:
    if not user.is_administrator:
        raise HTTPException(403, "account management is for an administrator")
    return user


@router.get("/admin/accounts")
async def accounts_page(request: Request) -> HTMLResponse:
    user = administrator(await current_user(request))
    users = await store.every_user(pool(request))
    return await render(request, "accounts.html", user, users=users, audit=await store.account_audit(pool(request)),
                        teams=teams(), roles=auth.ROLE_NAMES,
                        min_password=MIN_PASSWORD, title="Accounts", **inputs_at_fault(user.flash, FIELD_IDS))


async def _refused(request: Request, message: str, problems: list[dict[str, str]]) -> Response:
    await set_flash(request, {"kind": "error", "message": message, "reasons": problems, "scope": "accounts"})
    return back("/admin/accounts")


@router.post("/admin/accounts")
async def create_account(request: Request) -> Response:
    user = administrator(await current_user(request))
    form = await checked_form(request, user)
    account = check_new_account(str(form.get("user_id", "")), str(form.get("name", "")),
                                [str(r) for r in form.getlist("roles")], [str(t) for t in form.getlist("teams")],
                                str(form.get("password", "")), str(form.get("email", "")))
    if account.problems:
        return await _refused(request, "The account was not created:", account.problems)
    async with pool(request).acquire() as conn, conn.transaction():
        if not await store.insert_user_if_missing(conn, account.user_id, account.name,
                                                  await auth.hash_password(account.password), account.roles,
                                                  account.team_ids, email=account.email):
            return await _refused(request, "The account was not created:", [{
                "field": "user_id", "message": f"{account.user_id} already exists (or another account has that"
                " email)"}])
        await store.audit_account(conn, user.user_id, account.user_id, "created",
                                  {"name": account.name, "roles": account.roles, "team_ids": account.team_ids})
        await store.audit_act(conn, "account.created", actor=user.user_id, roles=user.roles,
                              object_id=account.user_id, details={"roles": ",".join(account.roles),
                                                                  "team_ids": ",".join(account.team_ids)})
        await directory.list_accounts(conn, [account.user_id])
    await set_flash(request, {"kind": "ok", "message": f"Account {account.user_id} created.", "scope": "accounts"})
    return back("/admin/accounts")


@router.post("/admin/accounts/{user_id}/{action}")
async def change_account(request: Request, user_id: str, action: str) -> Response:
    user = administrator(await current_user(request))
    form = await checked_form(request, user)
    if action not in ("disable", "enable", "password"):
        raise HTTPException(404, "no such action")
    if action == "disable" and user_id == user.user_id:
        return await _refused(request, "Not done:", [{"field": "user_id", "message": "you cannot disable your"
                                                      " own account: ask another administrator"}])
    password = str(form.get("password", ""))
    if action == "password" and (problems := password_problems(password)):
        return await _refused(request, f"The password of {user_id} was not reset:", problems)
    password_hash = await auth.hash_password(password) if action == "password" else ""
    async with pool(request).acquire() as conn, conn.transaction():
        row = await store.load_user(conn, user_id)
        if row is None:
            raise HTTPException(404, "no such account")
        if action == "enable" and row["demo"] and not request.app.state.settings.development:
            return await _refused(request, "Not done:", [{"field": "user_id", "message": f"{user_id} is a demo"
                                                          " account, whose password is published: only in"
                                                          " development"}])
        if action == "password":
            if not await store.set_password(conn, user_id, password_hash):
                return await _refused(request, f"The password of {user_id} was not reset:", [{
                    "field": "password", "message": "a council account signs in with the council's provider"
                    " and has no Tessera password"}])
            audited = "password_reset"
        else:
            await store.set_active(conn, user_id, action == "enable")
            await directory.list_accounts(conn, [user_id])
            audited = f"{action}d"
        await store.audit_account(conn, user.user_id, user_id, audited, {})
        await store.audit_act(conn, f"account.{audited}", actor=user.user_id, roles=user.roles, object_id=user_id)
    done = {"disable": "disabled: they cannot sign in", "enable": "enabled",
            "password": "has a new password; their sessions have ended"}
    await set_flash(request, {"kind": "ok", "message": f"{user_id} {done[action]}.", "scope": "accounts"})
    return back("/admin/accounts")
