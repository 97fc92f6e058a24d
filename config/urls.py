"""URL map: the dashboard at /, support's admin at /admin/, the Stripe-compatible API at /v1/,
sign-in pages."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from billing.api.connect import OAuthDeauthorizeView

admin.site.site_header = "Relance support"
admin.site.site_title = "Relance support"
admin.site.index_title = "Billing data"

urlpatterns = [
    path("admin/", admin.site.urls),
    # CSRF does not apply: API views are csrf_exempt and authenticate with secret keys.
    path("v1/", include("billing.api.urls")),
    # Stripe's connect.stripe.com endpoint (`StripeClient(base_addresses={"connect": …})`).
    path("oauth/deauthorize", OAuthDeauthorizeView.as_view()),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="auth/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Settings → Emails and the email log (before the dashboard's catch-all prefix).
    path("", include("notifications.urls")),
    # Automations (before the dashboard's catch-all prefix).
    path("", include("automations.urls")),
    path("", include("billing.urls")),
]
