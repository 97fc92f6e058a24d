"""Dashboard URLs of the notifications app (the `notifications` namespace)."""

from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("settings/emails/", views.EmailSettingsView.as_view(), name="settings"),
    path("emails/", views.EmailListView.as_view(), name="emails"),
    path("emails/<str:pk>/", views.EmailDetailView.as_view(), name="email_detail"),
    path("emails/<str:pk>/resend/", views.EmailResendView.as_view(), name="email_resend"),
]
