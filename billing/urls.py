"""Dashboard URLs (the `dashboard` namespace)."""

from django.urls import path

from billing.views import (
    connect,
    customers,
    events,
    invoices,
    overview,
    recovery,
    session,
    subscriptions,
    test_clocks,
    webhooks,
)
from billing.views import settings as settings_views

app_name = "dashboard"

urlpatterns = [
    path("", overview.OverviewView.as_view(), name="overview"),
    path("customers/", customers.CustomerListView.as_view(), name="customers"),
    path("customers/<str:pk>/", customers.CustomerDetailView.as_view(), name="customer_detail"),
    path("subscriptions/", subscriptions.SubscriptionListView.as_view(), name="subscriptions"),
    path(
        "subscriptions/<str:pk>/",
        subscriptions.SubscriptionDetailView.as_view(),
        name="subscription_detail",
    ),
    path(
        "subscriptions/<str:pk>/actions/<slug:action>/",
        subscriptions.SubscriptionActionView.as_view(),
        name="subscription_action",
    ),
    path("invoices/", invoices.InvoiceListView.as_view(), name="invoices"),
    path("invoices/<str:pk>/", invoices.InvoiceDetailView.as_view(), name="invoice_detail"),
    path(
        "invoices/<str:pk>/actions/<slug:action>/",
        invoices.InvoiceActionView.as_view(),
        name="invoice_action",
    ),
    path("events/", events.EventListView.as_view(), name="events"),
    path("events/<str:pk>/", events.EventDetailView.as_view(), name="event_detail"),
    path("webhooks/", webhooks.WebhookListView.as_view(), name="webhooks"),
    path("webhooks/<str:pk>/", webhooks.WebhookDetailView.as_view(), name="webhook_detail"),
    # A platform member inside a connected account does not edit or delete its webhook
    # endpoints: one the platform made there would keep receiving the account's events after it
    # disconnects (SPEC R-CON-7). Reading them stays open.
    path(
        "webhooks/<str:pk>/edit/",
        webhooks.WebhookEditView.as_view(platform_may_act=False),
        name="webhook_edit",
    ),
    path(
        "webhooks/<str:pk>/delete/",
        webhooks.WebhookDeleteView.as_view(platform_may_act=False),
        name="webhook_delete",
    ),
    path(
        "webhooks/<str:pk>/actions/<slug:action>/",
        webhooks.WebhookActionView.as_view(),
        name="webhook_action",
    ),
    path(
        "webhook-deliveries/<str:pk>/",
        webhooks.DeliveryDetailView.as_view(),
        name="webhook_delivery",
    ),
    path(
        "webhook-deliveries/<str:pk>/resend/",
        webhooks.DeliveryResendView.as_view(),
        name="webhook_delivery_resend",
    ),
    path("test-clocks/", test_clocks.TestClockListView.as_view(), name="test_clocks"),
    path(
        "test-clocks/<str:pk>/",
        test_clocks.TestClockDetailView.as_view(),
        name="test_clock_detail",
    ),
    path(
        "test-clocks/<str:pk>/advance/",
        test_clocks.TestClockAdvanceView.as_view(),
        name="test_clock_advance",
    ),
    path(
        "test-clocks/<str:pk>/customers/",
        test_clocks.TestClockCustomerView.as_view(),
        name="test_clock_add_customer",
    ),
    path(
        "test-clocks/<str:pk>/delete/",
        test_clocks.TestClockDeleteView.as_view(),
        name="test_clock_delete",
    ),
    path("settings/", settings_views.SettingsView.as_view(), name="settings"),
    path(
        "settings/recovery/",
        recovery.RecoverySettingsView.as_view(),
        name="recovery_settings",
    ),
    path(
        "settings/account/",
        settings_views.AccountSettingsUpdateView.as_view(),
        name="settings_update",
    ),
    path(
        "settings/exchange-rates/",
        settings_views.ExchangeRateSetView.as_view(),
        name="exchange_rate_set",
    ),
    path(
        "settings/exchange-rates/<str:currency>/remove/",
        settings_views.ExchangeRateRemoveView.as_view(),
        name="exchange_rate_remove",
    ),
    # A platform member inside a connected account does not manage its API keys: a key would
    # outlive the account's disconnection (SPEC R-CON-7).
    path(
        "settings/api-keys/",
        settings_views.ApiKeyCreateView.as_view(platform_may_act=False),
        name="api_key_create",
    ),
    path(
        "settings/api-keys/<str:pk>/revoke/",
        settings_views.ApiKeyRevokeView.as_view(platform_may_act=False),
        name="api_key_revoke",
    ),
    path(
        "connected-accounts/",
        connect.ConnectedAccountListView.as_view(),
        name="connected_accounts",
    ),
    path(
        "connected-accounts/<str:pk>/",
        connect.ConnectedAccountDetailView.as_view(),
        name="connected_account_detail",
    ),
    path(
        "connected-accounts/<str:pk>/disconnect/",
        connect.DisconnectView.as_view(),
        name="connected_account_disconnect",
    ),
    path(
        "connected-accounts/<str:pk>/reconnect/",
        connect.ReconnectView.as_view(),
        name="connected_account_reconnect",
    ),
    path("mode/", session.ModeSwitchView.as_view(), name="mode_switch"),
    path("account/", session.AccountSwitchView.as_view(), name="account_switch"),
]
