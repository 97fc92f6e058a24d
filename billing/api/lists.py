"""Stripe's list envelope over keyset pagination: `limit`, `starting_after`, `ending_before`,
`created[gt|gte|lt|lte]`, newest first."""

from datetime import timedelta

from django.db.models import QuerySet

from billing.api.errors import invalid, not_found
from billing.api.params import Integer, Range, String
from billing.pagination import InvalidCursor, keyset_page
from billing.serializers import serialize

DEFAULT_LIMIT = 10

# The parameters every list endpoint takes; resources add their filters.
LIST_FIELDS = {
    "limit": Integer(min_value=1, max_value=100),
    "starting_after": String(max_length=255),
    "ending_before": String(max_length=255),
    "created": Range(),
}

# Stripe's timestamps are whole seconds while ours are finer: `created[lte]=T` includes
# everything created during second T, and `created[gt]=T` starts at the next second.
SECOND = timedelta(seconds=1)
CREATED_LOOKUPS = {
    "gt": ("created__gte", SECOND),
    "gte": ("created__gte", timedelta(0)),
    "lt": ("created__lt", timedelta(0)),
    "lte": ("created__lt", SECOND),
}


def page(
    queryset: QuerySet,
    params: dict,
    *,
    url: str,
    object_label: str,
    cursor_queryset: QuerySet | None = None,
    cursor_to_pk=None,
) -> dict:
    """One page of `queryset` as Stripe's list object.

    `cursor_queryset` is the scoped, unfiltered queryset cursors are looked up in (so a cursor
    from another account is simply unknown); `cursor_to_pk` maps a Stripe id to the primary key
    for objects whose Stripe id is not their key (coupons).
    """
    if cursor_queryset is None:
        cursor_queryset = queryset
    after, before = params.get("starting_after") or None, params.get("ending_before") or None
    if after and before:
        raise invalid(
            "ending_before",
            "You may only specify one of these parameters: starting_after, ending_before.",
            "parameters_exclusive",
        )
    for op, when in params.get("created", {}).items():
        lookup, shift = CREATED_LOOKUPS[op]
        queryset = queryset.filter(**{lookup: when + shift})

    def to_pk(param, cursor):
        if cursor is None or cursor_to_pk is None:
            return cursor
        pk = cursor_to_pk(cursor)
        if pk is None:
            raise not_found(object_label, cursor, param=param)
        return str(pk)

    try:
        result = keyset_page(
            queryset,
            after=to_pk("starting_after", after),
            before=to_pk("ending_before", before),
            limit=params.get("limit") or DEFAULT_LIMIT,
            cursor_queryset=cursor_queryset,
        )
    except InvalidCursor:
        param = "starting_after" if after else "ending_before"
        raise not_found(object_label, after or before, param=param) from None
    # Walking backwards (ending_before), Stripe's `has_more` says whether newer objects remain.
    has_more = result.has_previous if before else result.has_more
    return {
        "object": "list",
        "data": [serialize(obj) for obj in result.items],
        "has_more": has_more,
        "url": url,
    }
