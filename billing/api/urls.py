"""The /v1 URL map (mounted at /v1/ by config/urls.py); anything else is Stripe's 404."""

from django.urls import path, re_path

from billing.api import (
    accounts,
    catalog,
    connect,
    customers,
    events,
    invoices,
    payments,
    subscriptions,
    test_clocks,
    webhook_endpoints,
)
from billing.api.base import UnknownEndpoint

app_name = "api"

urlpatterns = [
    path("customers", customers.CustomersView.as_view()),
    path("customers/<str:customer_id>", customers.CustomerView.as_view()),
    path(
        "customers/<str:customer_id>/payment_methods",
        customers.CustomerPaymentMethodsView.as_view(),
    ),
    path(
        "customers/<str:customer_id>/balance_transactions",
        customers.CustomerBalanceTransactionsView.as_view(),
    ),
    path(
        "customers/<str:customer_id>/balance_transactions/<str:transaction_id>",
        customers.CustomerBalanceTransactionView.as_view(),
    ),
    path("payment_methods", customers.PaymentMethodsView.as_view()),
    path("payment_methods/<str:payment_method_id>", customers.PaymentMethodView.as_view()),
    path(
        "payment_methods/<str:payment_method_id>/attach",
        customers.PaymentMethodAttachView.as_view(),
    ),
    path(
        "payment_methods/<str:payment_method_id>/detach",
        customers.PaymentMethodDetachView.as_view(),
    ),
    path("products", catalog.ProductsView.as_view()),
    path("products/<str:product_id>", catalog.ProductView.as_view()),
    path("prices", catalog.PricesView.as_view()),
    path("prices/<str:price_id>", catalog.PriceView.as_view()),
    path("coupons", catalog.CouponsView.as_view()),
    path("coupons/<str:coupon_id>", catalog.CouponView.as_view()),
    path("subscriptions", subscriptions.SubscriptionsView.as_view()),
    path("subscriptions/<str:subscription_id>", subscriptions.SubscriptionView.as_view()),
    path(
        "subscriptions/<str:subscription_id>/resume",
        subscriptions.SubscriptionResumeView.as_view(),
    ),
    path("subscription_items", subscriptions.SubscriptionItemsView.as_view()),
    path(
        "subscription_items/<str:item_id>",
        subscriptions.SubscriptionItemView.as_view(),
    ),
    path("invoices", invoices.InvoicesView.as_view()),
    # Before `invoices/<id>`: these two words are not invoice ids.
    path("invoices/upcoming", invoices.InvoiceUpcomingView.as_view()),
    path("invoices/create_preview", invoices.InvoiceCreatePreviewView.as_view()),
    path("invoices/<str:invoice_id>", invoices.InvoiceView.as_view()),
    path("invoices/<str:invoice_id>/finalize", invoices.InvoiceFinalizeView.as_view()),
    path("invoices/<str:invoice_id>/pay", invoices.InvoicePayView.as_view()),
    path("invoices/<str:invoice_id>/void", invoices.InvoiceVoidView.as_view()),
    path(
        "invoices/<str:invoice_id>/mark_uncollectible",
        invoices.InvoiceMarkUncollectibleView.as_view(),
    ),
    path("invoices/<str:invoice_id>/lines", invoices.InvoiceLinesView.as_view()),
    path("invoiceitems", invoices.InvoiceItemsView.as_view()),
    path("invoiceitems/<str:invoiceitem_id>", invoices.InvoiceItemView.as_view()),
    path("payment_intents", payments.PaymentIntentsView.as_view()),
    path("payment_intents/<str:intent_id>", payments.PaymentIntentView.as_view()),
    path("payment_intents/<str:intent_id>/confirm", payments.PaymentIntentConfirmView.as_view()),
    path("events", events.EventsView.as_view()),
    path("events/<str:event_id>", events.EventView.as_view()),
    path("test_helpers/test_clocks", test_clocks.TestClocksView.as_view()),
    path("test_helpers/test_clocks/<str:clock_id>", test_clocks.TestClockView.as_view()),
    path(
        "test_helpers/test_clocks/<str:clock_id>/advance",
        test_clocks.TestClockAdvanceView.as_view(),
    ),
    # Connect (SPEC R-CON-*): connected accounts and the money between accounts.
    path("account", accounts.CurrentAccountView.as_view()),
    path("accounts", accounts.AccountsView.as_view()),
    path("accounts/<str:account_id>", accounts.AccountView.as_view()),
    path("transfers", connect.TransfersView.as_view()),
    path("transfers/<str:transfer_id>", connect.TransferView.as_view()),
    path("application_fees", connect.ApplicationFeesView.as_view()),
    path("application_fees/<str:fee_id>", connect.ApplicationFeeView.as_view()),
    path("balance", connect.BalanceView.as_view()),
    path("balance_transactions", connect.BalanceTransactionsView.as_view()),
    path(
        "balance_transactions/<str:transaction_id>",
        connect.BalanceTransactionView.as_view(),
    ),
    path("webhook_endpoints", webhook_endpoints.WebhookEndpointsView.as_view()),
    path("webhook_endpoints/<str:endpoint_id>", webhook_endpoints.WebhookEndpointView.as_view()),
    re_path(r"^.*$", UnknownEndpoint.as_view()),
]
