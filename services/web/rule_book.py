"""GET /rules: the rule book (docs/rules.md) as a page, each rule anchored by its id (issue #22 §9)."""

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from services.web.pages import current_user, render, settings_of
from services.web.rules_text import rule_book_html

router = APIRouter()


@router.get("/rules")
async def rules_page(request: Request) -> HTMLResponse:
    user = await current_user(request)
    path = settings_of(request).web_rules_file
    if not path.is_file():
        raise HTTPException(404, "the rule book is not installed with this desk")
    return await render(request, "rules.html", user, book=rule_book_html(path), title="The rule book")
