"""How a work list is paged and sorted (issue #18 §5): workflow pages and sorts on the server; the desk keeps the
choice in the page's query string, so every page link and sort link keeps the others."""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

BUCKETS = ("incoming", "incomplete", "future")
SORTS = {"priority": "Priority", "waiting": "Waiting since", "due": "Due", "person": "Person",
         "step_type": "Step type"}
SIZES = (25, 50, 100, 200)
DEFAULT_SORT, DEFAULT_SIZE = "priority", 50


def _page(value: str | None) -> int:
    return int(value) if value and value.isdigit() and 0 < int(value) <= 100_000 else 1


@dataclass(frozen=True)
class WorkListing:
    """The sort, the page size and the page shown of each bucket (incoming, incomplete, future)."""

    sort: str = DEFAULT_SORT
    size: int = DEFAULT_SIZE
    pages: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(BUCKETS, 1))

    @classmethod
    def of(cls, query: Mapping[str, str]) -> "WorkListing":
        """From a page's query string; what is not understood is the default."""
        sort = query.get("sort", DEFAULT_SORT)
        size = query.get("size", "")
        return cls(sort=sort if sort.removeprefix("-") in SORTS else DEFAULT_SORT,
                   size=int(size) if size.isdigit() and int(size) in SIZES else DEFAULT_SIZE,
                   pages={b: _page(query.get(f"{b}_page")) for b in BUCKETS})

    def query(self) -> str:
        """The query string for workflow's work list and for the desk's own links."""
        return urlencode({"sort": self.sort, "size": self.size, **{f"{b}_page": self.pages[b] for b in BUCKETS}})

    def page_link(self, bucket: str, page: int) -> str:
        return "?" + replace(self, pages={**self.pages, bucket: page}).query()

    def sort_link(self, key: str) -> str:
        """Sorting by `key` from the first pages; by `key` again reverses it."""
        sort = f"-{key}" if self.sort == key else key
        return "?" + WorkListing(sort=sort, size=self.size).query()

    def size_link(self, size: int) -> str:
        return "?" + WorkListing(sort=self.sort, size=size).query()

    def pager(self, bucket: str, total: int) -> dict[str, Any]:
        """What the page links of one bucket show: this page, the last, the rows shown."""
        last = max(1, math.ceil(total / self.size))
        page = min(self.pages[bucket], last)
        return {"page": page, "last": last, "total": total, "first_row": min(total, (page - 1) * self.size + 1),
                "last_row": min(total, page * self.size)}
