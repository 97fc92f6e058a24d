"""`expand[]`: replace ids in a rendered object by the objects they name, Stripe style.

One mechanism for every resource: `EXPANDABLE` lists, per Stripe object name, the fields that
hold an id Stripe lets callers expand (dotted when inside a sub-hash, as
`invoice_settings.default_payment_method`). A path walks fields and, on lists, `data`; each id
is fetched within the caller's account and mode and rendered by `serialize`.
"""

from django.db.models import Q

from billing.api.errors import invalid
from billing.models import (
    Account,
    ApplicationFee,
    BalanceTransaction,
    Customer,
    Invoice,
    InvoiceItem,
    PaymentIntent,
    PaymentMethod,
    Price,
    Product,
    Subscription,
    TestClock,
    Transfer,
)
from billing.models.base import in_mode
from billing.serializers import serialize

# Stripe's limit on nesting: `a.b.c.d`.
MAX_DEPTH = 4

EXPANDABLE: dict[str, set[str]] = {
    "customer": {"invoice_settings.default_payment_method", "test_clock"},
    "payment_method": {"customer"},
    "product": {"default_price"},
    "price": {"product"},
    "subscription": {
        "customer",
        "default_payment_method",
        "latest_invoice",
        "test_clock",
        "on_behalf_of",
        "transfer_data.destination",
    },
    "invoice": {
        "customer",
        "default_payment_method",
        "payment_intent",
        "subscription",
        "test_clock",
        "on_behalf_of",
        # Rendered in full already (Stripe includes it only when asked): expanding is a no-op.
        "confirmation_secret",
    },
    "invoiceitem": {"customer", "invoice", "subscription"},
    "payment_intent": {"customer", "invoice", "payment_method"},
    "line_item": {"subscription"},
    "customer_balance_transaction": {"customer", "invoice"},
    "transfer": {"balance_transaction", "destination", "invoice", "payment_intent"},
    "application_fee": {"account", "balance_transaction", "invoice", "payment_intent"},
}

# Which model an id names, by its prefix (SPEC R-CORE-2).
MODELS_BY_PREFIX = {
    "cus": Customer,
    "pm": PaymentMethod,
    "prod": Product,
    "price": Price,
    "sub": Subscription,
    "in": Invoice,
    "ii": InvoiceItem,
    "pi": PaymentIntent,
    "clock": TestClock,
    "tr": Transfer,
    "fee": ApplicationFee,
    "txn": BalanceTransaction,
}


def _cannot(path: str):
    return invalid("expand", f"This property cannot be expanded ({path}).")


def _fetch(object_id: str, ctx):
    """The object `object_id` names in the caller's account and mode, rendered; the id itself
    when it names something else (a connected account, which is not the caller's to read)."""
    prefix = object_id.split("_", 1)[0]
    if prefix == "acct":
        # The caller itself, or one of its connected accounts (a transfer's destination).
        found = Account.objects.filter(
            Q(pk=ctx.account.pk) | Q(platform=ctx.account, deauthorized_at__isnull=True),
            pk=object_id,
        ).first()
        return serialize(found) if found is not None else object_id
    model = MODELS_BY_PREFIX.get(prefix)
    if model is None:
        return object_id
    obj = (
        model.objects.filter(account=ctx.account)
        .filter(in_mode(ctx.livemode))
        .filter(pk=object_id)
        .first()
    )
    return serialize(obj) if obj is not None else object_id


def _expand(data, segments: list[str], full: str, ctx) -> None:
    if not isinstance(data, dict) or not segments:
        return
    object_name = data.get("object")
    if object_name == "list" and segments[0] == "data":
        for item in data.get("data", []):
            _expand(item, segments[1:], full, ctx)
        return
    fields = EXPANDABLE.get(object_name, set())
    for length in range(1, len(segments) + 1):
        if ".".join(segments[:length]) not in fields:
            continue
        holder = data
        for segment in segments[: length - 1]:
            holder = holder.get(segment)
            if not isinstance(holder, dict):
                raise _cannot(full)
        name = segments[length - 1]
        value = holder.get(name)
        if isinstance(value, str):
            value = holder[name] = _fetch(value, ctx)
        _expand(value, segments[length:], full, ctx)
        return
    raise _cannot(full)


def expand(rendered: dict, paths: list[str], ctx) -> dict:
    """`rendered` with every path in `paths` expanded in place (and returned)."""
    for path in paths:
        segments = path.split(".")
        if len(segments) > MAX_DEPTH:
            raise invalid(
                "expand", f"You cannot expand more than {MAX_DEPTH} levels of a property."
            )
        if not all(segments):
            raise _cannot(path)
        _expand(rendered, segments, path, ctx)
    return rendered
