"""A signed-in browser-less client of Tessera desk for the web tests (httpx, cookies kept)."""

import re

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
