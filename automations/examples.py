"""The four example automations of reference 000, to start the builder from."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Example:
    """A ready-made automation the builder opens with (the user can change everything)."""

    slug: str
    title: str
    description: str
    trigger: str
    filters: list = field(default_factory=list)
    actions: list = field(default_factory=list)


def examples(*, team_email: str = "", currency: str = "usd") -> list[Example]:
    """The examples, with the signed-in member's address and the account's currency filled in."""
    return [
        Example(
            "annual-dunning",
            "Custom dunning for annual subscribers",
            "When an annual subscriber's payment fails: retry on your own schedule, tell the "
            "team, and mark the subscription unpaid if it is still failing after three weeks.",
            "subscription_payment_failed",
            [{"kind": "subscription_interval", "interval": "year"}],
            [
                {"kind": "set_retry_policy", "delay_days": 0, "params": {"retry_days": [3, 5, 7]}},
                {
                    "kind": "email_team_member",
                    "delay_days": 0,
                    "params": {
                        "to": team_email,
                        "memo": "An annual subscriber's payment failed. Reach out personally.",
                    },
                },
                {"kind": "mark_subscription_unpaid", "delay_days": 21, "params": {}},
            ],
        ),
        Example(
            "large-overdue",
            "Flag large overdue invoices to the team",
            "When an invoice over 1,000 is overdue, email the collections team at once and "
            "again a week later.",
            "invoice_overdue",
            [{"kind": "invoice_amount", "min": 100000, "max": None, "currency": currency}],
            [
                {
                    "kind": "email_team_member",
                    "delay_days": 0,
                    "params": {"to": team_email, "memo": "A large invoice is overdue."},
                },
                {
                    "kind": "email_team_member",
                    "delay_days": 7,
                    "params": {"to": team_email, "memo": "Still overdue after a week."},
                },
            ],
        ),
        Example(
            "cancellation-confirmation",
            "Cancellation confirmation email",
            "When a subscription is canceled, confirm it to the customer, with a link to a "
            "survey about why they left.",
            "subscription_canceled",
            [],
            [
                {
                    "kind": "send_cancellation_confirmation",
                    "delay_days": 0,
                    "params": {"survey_url": ""},
                }
            ],
        ),
        Example(
            "beta-credit",
            "Credit for new beta users",
            "When a customer signs up with the metadata beta=true, credit their balance.",
            "customer_created",
            [{"kind": "customer_metadata", "key": "beta", "value": "true"}],
            [
                {
                    "kind": "credit_customer_balance",
                    "delay_days": 0,
                    "params": {"amount": 1000, "currency": currency},
                }
            ],
        ),
    ]


def get(slug: str, **options) -> Example | None:
    return next((example for example in examples(**options) if example.slug == slug), None)
