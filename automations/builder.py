"""The builder form: rows of filters and actions as the page posts them, to and from the data
`services.save_automation` takes. Amounts are typed in major units ("100.00") and stored in
minor units; delays of the due-date trigger are "N days before/after" (stored signed)."""

from decimal import Decimal, InvalidOperation

from automations import triggers
from automations.choices import ConditionKind

FILTER_FIELDS = ("kind", "key", "value", "min", "max", "currency", "interval")
ACTION_FIELDS = (
    "kind",
    "delay",
    "when",
    "to",
    "memo",
    "survey_url",
    "retry_days",
    "price",
    "amount",
    "currency",
)


def _count(post, name) -> int:
    try:
        return max(0, min(int(post.get(name, 0)), 50))
    except ValueError:
        return 0


def rows_from_post(post) -> tuple[list[dict], list[dict]]:
    """The filter and action rows as typed (strings), in order."""
    filters = []
    for i in range(_count(post, "filter_count")):
        row = {name: post.get(f"f-{i}-{name}", "").strip() for name in FILTER_FIELDS}
        row["products"] = post.getlist(f"f-{i}-products")
        filters.append(row)
    actions = []
    for i in range(_count(post, "action_count")):
        actions.append({name: post.get(f"a-{i}-{name}", "").strip() for name in ACTION_FIELDS})
    return filters, actions


def _minor(text: str, currency: str, errors: dict, key: str):
    """Major units typed by a person → minor units; None when empty."""
    from billing import money

    if text == "":
        return None
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        errors[key] = ["Enter an amount, e.g. 100.00."]
        return None
    return money.from_decimal(value, currency or "usd")


def _major(amount, currency: str) -> str:
    from billing import money

    return "" if amount is None else str(money.to_decimal(amount, currency or "usd"))


def data_from_rows(filters: list[dict], actions: list[dict], trigger: str):
    """(conditions, actions, errors the typing itself caused) for `services.save_automation`."""
    errors: dict[str, list[str]] = {}
    conditions = []
    for i, row in enumerate(filters):
        kind = row["kind"]
        if kind in (ConditionKind.CUSTOMER_METADATA, ConditionKind.INVOICE_METADATA):
            conditions.append({"kind": kind, "key": row["key"], "value": row["value"]})
        elif kind == ConditionKind.INVOICE_AMOUNT:
            conditions.append(
                {
                    "kind": kind,
                    "min": _minor(row["min"], row["currency"], errors, f"filters.{i}.min"),
                    "max": _minor(row["max"], row["currency"], errors, f"filters.{i}.max"),
                    "currency": row["currency"],
                }
            )
        elif kind == ConditionKind.SUBSCRIPTION_INTERVAL:
            conditions.append({"kind": kind, "interval": row["interval"]})
        elif kind == ConditionKind.PRODUCTS:
            conditions.append({"kind": kind, "products": row["products"]})
        else:
            conditions.append({"kind": kind})
    due_date = trigger in triggers.REGISTRY and triggers.get(trigger).from_due_date
    out = []
    for i, row in enumerate(actions):
        try:
            delay = int(row["delay"] or 0)
        except ValueError:
            errors[f"actions.{i}.delay_days"] = ["Enter a whole number of days."]
            delay = 0
        if due_date and row["when"] == "before":
            delay = -delay
        params = {
            "to": row["to"],
            "memo": row["memo"],
            "survey_url": row["survey_url"],
            "retry_days": row["retry_days"],
            "price": row["price"],
            "currency": row["currency"],
        }
        if row["kind"] == "credit_customer_balance":
            params["amount"] = _minor(row["amount"], row["currency"], errors, f"actions.{i}.amount")
        out.append({"kind": row["kind"], "delay_days": delay, "params": params})
    return conditions, out, errors


def rows_from_data(conditions: list[dict], actions: list[dict]):
    """Rows to show for saved (or example) data."""
    filters = []
    for condition in conditions:
        row = dict.fromkeys(FILTER_FIELDS, "")
        row["products"] = list(condition.get("products", []))
        row.update(
            {k: v for k, v in condition.items() if k in ("kind", "key", "value", "interval")}
        )
        if condition["kind"] == ConditionKind.INVOICE_AMOUNT:
            currency = condition.get("currency", "usd")
            row.update(
                currency=currency,
                min=_major(condition.get("min"), currency),
                max=_major(condition.get("max"), currency),
            )
        filters.append(row)
    rows = []
    for action in actions:
        params = action.get("params") or {}
        delay = action.get("delay_days", 0)
        row = dict.fromkeys(ACTION_FIELDS, "")
        row.update(
            kind=action["kind"],
            delay=str(abs(delay)),
            when="before" if delay < 0 else "after",
            to=params.get("to", ""),
            memo=params.get("memo", ""),
            survey_url=params.get("survey_url", ""),
            retry_days=", ".join(str(d) for d in params.get("retry_days", [])),
            price=params.get("price", ""),
            currency=params.get("currency", ""),
            amount=_major(params.get("amount"), params.get("currency", "usd"))
            if "amount" in params
            else "",
        )
        rows.append(row)
    return filters, rows


def attach_errors(rows: list[dict], errors: dict, prefix: str) -> list[dict]:
    """Give each row its own errors ({field: [messages]}) for inline display."""
    aliases = {"delay_days": "delay"}
    for i, row in enumerate(rows):
        mine = {}
        for key, messages in errors.items():
            head = f"{prefix}.{i}."
            if key.startswith(head):
                name = key[len(head) :]
                mine[aliases.get(name, name)] = messages
        row["errors"] = mine
    return rows
