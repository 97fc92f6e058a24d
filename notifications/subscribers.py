"""Which committed events send customer emails (DESIGN "The flow of a change", step 4).

Each handler runs after the event's transaction committed, in a django-q2 task
(`billing.tasks.dispatch_event`), and calls one function of `notifications.services.emails`.
"""

from billing.subscribers import subscribe
from notifications.services import emails


@subscribe("invoice.payment_failed")
def on_payment_failed(event):
    emails.payment_failed(event)


@subscribe("invoice.payment_action_required")
def on_payment_action_required(event):
    emails.payment_action_required(event)


@subscribe("invoice.finalized")
def on_invoice_finalized(event):
    emails.invoice_finalized(event)


@subscribe("invoice.paid")
def on_invoice_paid(event):
    emails.receipt(event)


@subscribe("invoice.upcoming")
def on_invoice_upcoming(event):
    emails.upcoming_renewal(event)


@subscribe("customer.subscription.created")
@subscribe("customer.subscription.updated")
def on_subscription_changed(event):
    # A new trial, or a trial moved (renewed): plan (or send) its reminder (R-MAIL-2).
    emails.plan_trial_reminder(event)


@subscribe("customer.subscription.deleted")
def on_subscription_deleted(event):
    emails.subscription_canceled(event)


@subscribe("payment_method.attached")
def on_payment_method_attached(event):
    emails.card_attached(event)


@subscribe("customer.updated")
def on_customer_updated(event):
    emails.customer_updated(event)
