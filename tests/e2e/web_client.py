"""A signed-in browser-less client of Tessera desk for the web tests (httpx, cookies kept)."""

import re
from html.parser import HTMLParser

import httpx

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Desk:
    """One user's session with the web service."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, follow_redirects=True, timeout=30)
        self.csrf = ""

    async def sign_in(self, user: str, password: str = "tessera-demo") -> httpx.Response:
        page = await self.http.get("/login")
        token = CSRF.search(page.text)
        assert token, page.text[:500]
        response = await self.http.post("/login", data={"username": user, "password": password,
                                                         "csrf_token": token.group(1), "next": "/work"})
        found = CSRF.search(response.text)
        self.csrf = found.group(1) if found else ""
        return response

    async def get(self, path: str) -> httpx.Response:
        response = await self.http.get(path)
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    async def post(self, path: str, **data: object) -> httpx.Response:
        return await self.http.post(path, data={"csrf_token": self.csrf, **data})  # type: ignore[dict-item]

    async def close(self) -> None:
        await self.http.aclose()


class _FormReader(HTMLParser):
    """What a browser would submit from one form: inputs, checked boxes, selected options, textareas."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside, self.fields = form_id, False, {}  # type: ignore[var-annotated]
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        elif self.inside and tag == "input" and a.get("name"):
            if a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self.fields.setdefault(a["name"], []).append(a.get("value", ""))
        elif self.inside and tag == "select":
            self._select = a.get("name")
        elif self.inside and tag == "option" and self._select and "selected" in a:
            self.fields.setdefault(self._select, []).append(a.get("value", ""))
        elif self.inside and tag == "textarea":
            self._textarea = a.get("name")
            self.fields[self._textarea] = [""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea][0] += data


def form_fields(html: str, form_id: str) -> dict[str, list[str]]:
    """The values the form with this id would submit as it is rendered."""
    reader = _FormReader(form_id)
    reader.feed(html)
    return reader.fields


def markup(html: str) -> str:
    """The page without its design system's classes (GOV.UK Frontend's govuk-*, MOJ Frontend's moj-*; issue #19 §4),
    so a test reads the page's own structure and hooks as they were written."""
    def own(found: re.Match[str]) -> str:
        kept = [c for c in found.group(1).split() if not c.startswith(("govuk-", "moj-"))]
        return f' class="{" ".join(kept)}"' if kept else ""
    return re.sub(r' class="([^"]*)"', own, html)


def error_beside(html: str, input_id: str) -> str:
    """Issue #19 §4: what a refused form says beside the input (its GOV.UK error message, which the input is described
    by and the error summary links to), as text; '' when it says nothing there."""
    found = re.search(rf'<p class="govuk-error-message" id="{re.escape(input_id)}-error">(.*?)</p>', html, re.S)
    if not found or not re.search(rf'aria-describedby="[^"]*\b{re.escape(input_id)}-error"', html):
        return ""
    summary = html.split('class="govuk-error-summary"', 1)[-1].split("</ul>", 1)[0]
    linked = f'href="#{input_id}"' in summary
    return " ".join(re.sub(r"<[^>]+>", "", found.group(1)).split()).removeprefix("Error: ") if linked else ""
