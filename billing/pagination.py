"""Keyset ("cursor") pagination over `(-created, -id)`: no OFFSET, no COUNT(*).

Cursors are object ids, as Stripe's `starting_after` / `ending_before` are: `after=X` is the
page of objects older than X, `before=X` the page of objects newer than X. Ids are unique and
`created` may tie, so the order is the pair (created, id), which is total; a page boundary
that falls inside a run of equal `created` values neither repeats nor skips a row. Ids compare
in the database's collation, which may differ from Python's; ORDER BY and the `<`/`>` filters
use the same one, so the walk stays exact on any database.

Each page costs at most three small indexed queries: the cursor's `created`, the page itself
(`limit + 1` rows, the extra one only says whether more follow) and an EXISTS for the other
direction. The dashboard lists and the /v1 API share this.
"""

from dataclasses import dataclass, field

from django.db.models import Q, QuerySet


class InvalidCursor(ValueError):
    """The cursor names no object of the queryset (the API answers 400, the dashboard page 1)."""


@dataclass
class KeysetPage:
    """One page, newest first, with what is needed to link to its neighbours."""

    items: list = field(default_factory=list)
    # Older objects follow the last item (Stripe's `has_more` for `starting_after` paging).
    has_more: bool = False
    # Newer objects precede the first item.
    has_previous: bool = False

    @property
    def next_cursor(self) -> str | None:
        """Pass as `after` to get the next (older) page."""
        return self.items[-1].pk if self.has_more and self.items else None

    @property
    def previous_cursor(self) -> str | None:
        """Pass as `before` to get the previous (newer) page."""
        return self.items[0].pk if self.has_previous and self.items else None


# `created <= c AND (created < c OR pk < p)` is `(created, pk) < (c, p)` written so that the
# leading `created <= c` is a plain range the (…, created, id) indexes can scan; the textbook
# `created < c OR (created = c AND pk < p)` makes SQLite and PostgreSQL read far more rows.
def _older_than(created, pk) -> Q:
    return Q(created__lte=created) & (Q(created__lt=created) | Q(pk__lt=pk))


def _newer_than(created, pk) -> Q:
    return Q(created__gte=created) & (Q(created__gt=created) | Q(pk__gt=pk))


def _any(queryset: QuerySet, *ordering: str) -> bool:
    """Whether `queryset` has a row, looked for by walking the index outwards from the cursor.

    A bare EXISTS lets PostgreSQL pick a sequential scan that starts at the wrong end of the
    table (measured: 14 ms against 0.1 ms at 100,000 rows); ordering makes it read one entry.
    """
    return queryset.order_by(*ordering).values_list("pk", flat=True)[:1].first() is not None


def _cursor_position(cursor_queryset: QuerySet, cursor: str):
    created = cursor_queryset.filter(pk=cursor).values_list("created", flat=True).first()
    if created is None:
        raise InvalidCursor(f"no such object: {cursor!r}")
    return created, cursor


def keyset_page(
    queryset: QuerySet,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int,
    cursor_queryset: QuerySet | None = None,
) -> KeysetPage:
    """The page of `queryset` (newest first) after or before the object with id `after`/`before`.

    `cursor_queryset` is where cursors are looked up (default: `queryset`). Pass the scoped but
    unfiltered queryset so that a cursor stays valid when a filter no longer matches it, and
    can never name another account's object. Raises InvalidCursor for an unknown cursor and
    ValueError when both `after` and `before` are given or `limit` is not positive.
    """
    if after and before:
        raise ValueError("pass at most one of after and before")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if cursor_queryset is None:
        cursor_queryset = queryset
    queryset = queryset.order_by()  # drop any default ordering; we set ours below

    if before:
        created, pk = _cursor_position(cursor_queryset, before)
        rows = list(
            queryset.filter(_newer_than(created, pk)).order_by("created", "pk")[: limit + 1]
        )
        has_previous = len(rows) > limit
        items = list(reversed(rows[:limit]))
        has_more = _any(
            queryset.filter(Q(created__lte=created) & (Q(created__lt=created) | Q(pk__lte=pk))),
            "-created",
            "-pk",
        )
        return KeysetPage(items=items, has_more=has_more, has_previous=has_previous)

    if after:
        created, pk = _cursor_position(cursor_queryset, after)
        rows = list(
            queryset.filter(_older_than(created, pk)).order_by("-created", "-pk")[: limit + 1]
        )
        has_previous = _any(
            queryset.filter(Q(created__gte=created) & (Q(created__gt=created) | Q(pk__gte=pk))),
            "created",
            "pk",
        )
    else:
        rows = list(queryset.order_by("-created", "-pk")[: limit + 1])
        has_previous = False
    return KeysetPage(items=rows[:limit], has_more=len(rows) > limit, has_previous=has_previous)
