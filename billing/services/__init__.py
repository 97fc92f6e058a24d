"""Billing services: one verb per change, keyword-only options, each in one transaction.

Callers (dashboard views, admin actions, API views, due jobs) validate their input, then call
one of these; nothing here renders or reads the request. One module per area; the verbs are
re-exported here so callers write `services.cancel_subscription(...)`.
"""

from billing.services.accounts import (
    changed_attributes,
    issue_api_key,
    known_timezones,
    remove_exchange_rate,
    revoke_api_key,
    set_exchange_rate,
    update_account_settings,
    update_recovery_settings,
    validate_timezone,
)
from billing.services.catalog import (
    create_coupon,
    create_price,
    create_product,
    delete_coupon,
    delete_product,
    update_coupon,
    update_price,
    update_product,
)
from billing.services.customers import (
    add_card,
    attach_payment_method,
    create_customer,
    create_payment_method,
    delete_customer,
    detach_payment_method,
    set_default_payment_method,
    update_customer,
)
from billing.services.invoices import (
    CardError,
    confirm_payment_intent,
    create_invoice_item,
    create_manual_invoice,
    finalize_invoice,
    mark_uncollectible,
    pay_invoice,
    void_invoice,
)
from billing.services.subscriptions import (
    cancel_subscription,
    create_subscription,
    mark_unpaid,
    resume_subscription,
    update_subscription,
)
from billing.services.test_clocks import advance_test_clock, create_test_clock, delete_test_clock

__all__ = [
    "CardError",
    "advance_test_clock",
    "cancel_subscription",
    "confirm_payment_intent",
    "create_invoice_item",
    "create_manual_invoice",
    "create_subscription",
    "create_test_clock",
    "delete_test_clock",
    "finalize_invoice",
    "mark_uncollectible",
    "mark_unpaid",
    "pay_invoice",
    "resume_subscription",
    "update_subscription",
    "void_invoice",
    "add_card",
    "attach_payment_method",
    "changed_attributes",
    "create_coupon",
    "create_customer",
    "create_price",
    "create_product",
    "delete_coupon",
    "delete_product",
    "update_coupon",
    "update_price",
    "update_product",
    "create_payment_method",
    "delete_customer",
    "detach_payment_method",
    "issue_api_key",
    "known_timezones",
    "remove_exchange_rate",
    "revoke_api_key",
    "set_default_payment_method",
    "set_exchange_rate",
    "update_account_settings",
    "update_customer",
    "update_recovery_settings",
    "validate_timezone",
]
