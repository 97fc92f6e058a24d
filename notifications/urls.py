"""URLs of the notifications app (the `notifications` namespace): dashboard pages, and the
hosted customer pages reached by a private link (no sign-in; see notifications/hosted.py)."""

from django.urls import path

from notifications import hosted, views

app_name = "notifications"

urlpatterns = [
    path("settings/emails/", views.EmailSettingsView.as_view(), name="settings"),
    path("emails/", views.EmailListView.as_view(), name="emails"),
    path("emails/<str:pk>/", views.EmailDetailView.as_view(), name="email_detail"),
    path("emails/<str:pk>/resend/", views.EmailResendView.as_view(), name="email_resend"),
    path(
        "customers/<str:pk>/deactivate-links/",
        views.DeactivateLinksView.as_view(),
        name="deactivate_links",
    ),
    # Hosted pages: the token is the whole credential and is only ever in the path.
    path("pay/<str:token>/", hosted.pay, name="hosted_pay"),
    path("pay/<str:token>/authenticate/", hosted.authenticate, name="hosted_authenticate"),
    path("manage/<str:token>/", hosted.manage, name="hosted_manage"),
    path("manage/<str:token>/pay/", hosted.manage_pay, name="hosted_manage_pay"),
]
