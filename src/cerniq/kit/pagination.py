"""Paging for list endpoints: ``page`` from 1, ``limit`` 1..100 (default 20)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Query


@dataclass(frozen=True)
class PageParams:
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def meta(self, total: int, **filters: Any) -> dict[str, Any]:
        pages = (total + self.limit - 1) // self.limit if self.limit else 0
        meta: dict[str, Any] = {"page": self.page, "limit": self.limit, "total": total, "pages": pages}
        active = {k: v for k, v in filters.items() if v is not None}
        if active:
            meta["filters"] = active
        return meta


def page_params(
    page: int = Query(1, ge=1, description="Page number, from 1"),
    limit: int = Query(20, ge=1, le=100, description="Items per page (max 100)"),
) -> PageParams:
    return PageParams(page=page, limit=limit)
