"""Dashboard URLs (the `dashboard` namespace)."""

from django.urls import path

from billing.views import dashboard

app_name = "dashboard"

urlpatterns = [
    path("", dashboard.overview, name="overview"),
]
