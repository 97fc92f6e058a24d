"""The billing data model. One module per area; import models from here."""

from billing.models.accounts import Account, ApiKey, ExchangeRate, Membership
from billing.models.api import IdempotencyKey
from billing.models.catalog import Coupon, Discount, Price, Product
from billing.models.connect import ApplicationFee, BalanceTransaction, Transfer
from billing.models.customers import Customer, CustomerBalanceTransaction, PaymentMethod
from billing.models.events import Event
from billing.models.invoices import Invoice, InvoiceItem, InvoiceLineItem
from billing.models.jobs import DueJob, RecoverySettings
from billing.models.payments import PaymentIntent
from billing.models.subscriptions import Subscription, SubscriptionItem
from billing.models.test_clocks import TestClock
from billing.models.webhooks import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
)

__all__ = [
    "Account",
    "ApiKey",
    "ApplicationFee",
    "BalanceTransaction",
    "Coupon",
    "Customer",
    "CustomerBalanceTransaction",
    "Discount",
    "DueJob",
    "Event",
    "ExchangeRate",
    "IdempotencyKey",
    "Invoice",
    "InvoiceItem",
    "InvoiceLineItem",
    "Membership",
    "PaymentIntent",
    "PaymentMethod",
    "Price",
    "Product",
    "RecoverySettings",
    "Subscription",
    "SubscriptionItem",
    "TestClock",
    "Transfer",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookDeliveryStatus",
    "WebhookEndpoint",
]
