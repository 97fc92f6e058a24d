"""Automations in words, for the list, the detail page and the admin."""

from automations.choices import ActionKind, ConditionKind, Trigger
from billing import money


def filter_text(condition: dict) -> str:
    kind = condition.get("kind")
    if kind == ConditionKind.CUSTOMER_METADATA:
        return f"customer metadata {condition['key']} = {condition['value']}"
    if kind == ConditionKind.INVOICE_METADATA:
        return f"invoice metadata {condition['key']} = {condition['value']}"
    if kind == ConditionKind.INVOICE_AMOUNT:
        currency = condition["currency"]
        parts = []
        if condition.get("min") is not None:
            parts.append(f"at least {money.format_amount(condition['min'], currency)}")
        if condition.get("max") is not None:
            parts.append(f"at most {money.format_amount(condition['max'], currency)}")
        return "invoice amount " + " and ".join(parts)
    if kind == ConditionKind.SUBSCRIPTION_INTERVAL:
        return (
            "annual subscriptions" if condition["interval"] == "year" else "monthly subscriptions"
        )
    if kind == ConditionKind.PRODUCTS:
        return "products: " + ", ".join(condition["products"])
    return str(kind)


def delay_text(delay: int, trigger: str) -> str:
    if trigger == Trigger.INVOICE_DUE_DATE_APPROACHING:
        if delay == 0:
            return "on the due date"
        unit = "day" if abs(delay) == 1 else "days"
        return f"{abs(delay)} {unit} {'before' if delay < 0 else 'after'} the due date"
    if delay == 0:
        return "at once"
    return f"after {delay} day{'s' if delay != 1 else ''}"


def action_text(action: dict) -> str:
    kind = action["kind"]
    label = ActionKind(kind).label if kind in ActionKind.values else kind
    params = action.get("params") or {}
    if kind == ActionKind.SET_RETRY_POLICY:
        return f"{label}: retries {', '.join(str(d) for d in params['retry_days'])} days apart"
    if kind == ActionKind.EMAIL_TEAM_MEMBER:
        return f"{label}: {params['to']}"
    if kind == ActionKind.CREDIT_CUSTOMER_BALANCE:
        return f"{label}: {money.format_amount(params['amount'], params['currency'])}"
    if kind == ActionKind.CREATE_SUBSCRIPTION:
        return f"{label}: {params['price']}"
    if kind == ActionKind.SEND_CANCELLATION_CONFIRMATION and params.get("survey_url"):
        return f"{label}, with a survey link"
    return label


def filters(automation) -> list[str]:
    return [filter_text(condition) for condition in automation.conditions]


def actions(automation) -> list[str]:
    return [
        f"{action_text(action)} — {delay_text(action.get('delay_days', 0), automation.trigger)}"
        for action in automation.actions
    ]


def describe(automation) -> str:
    """One line: the filters, then the actions."""
    when = "; ".join(filters(automation)) or "every event"
    then = ", then ".join(action_text(a) for a in automation.actions)
    return f"For {when}: {then}."
