"""Support's view of customer emails: the log (with Resend), the settings, the hosted links."""

from django.contrib import admin, messages
from django.utils import timezone

from notifications.models import EmailLog, EmailSettings, HostedLink
from notifications.services import sending


@admin.register(EmailSettings)
class EmailSettingsAdmin(admin.ModelAdmin):
    """Each account's email settings per mode; the model's `clean` checks URLs and domain."""

    list_display = ("account", "livemode", "payment_failed", "trial_ending", "verified_domain")
    list_filter = ("livemode",)
    search_fields = ("account__id", "account__name")
    raw_id_fields = ("account",)
    readonly_fields = ("updated",)


@admin.register(EmailLog)
class EmailLogAdmin(admin.ModelAdmin):
    """The 30-day email log (SPEC R-MAIL-9): read-only, with Resend."""

    list_display = ("id", "kind", "to", "status", "account", "livemode", "created", "sent_at")
    list_filter = ("status", "kind", "livemode")
    search_fields = ("id", "to", "customer__id", "object_id", "dedup_key")
    date_hierarchy = "created"
    actions = ("resend",)
    readonly_fields = [f.name for f in EmailLog._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Resend selected emails")
    def resend(self, request, queryset):
        for entry in queryset.select_related("account", "customer"):
            again = sending.resend(entry)
            if again is None or again.status == "suppressed":
                reason = again.reason if again else "already logged"
                self.message_user(request, f"{entry.pk}: not sent — {reason}", messages.WARNING)
            else:
                self.message_user(request, f"{entry.pk}: queued again as {again.pk}.")


@admin.register(HostedLink)
class HostedLinkAdmin(admin.ModelAdmin):
    """Links sent in emails (only token hashes are stored); support can deactivate them."""

    list_display = ("id", "purpose", "subscription", "created", "expires_at", "deactivated_at")
    list_filter = ("purpose", "livemode")
    search_fields = ("subscription__id", "customer__id")
    actions = ("deactivate",)
    readonly_fields = [f.name for f in HostedLink._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Deactivate selected links")
    def deactivate(self, request, queryset):
        count = queryset.filter(deactivated_at__isnull=True).update(
            deactivated_at=timezone.now(), reason=f"Deactivated by support ({request.user})."
        )
        self.message_user(request, f"{count} link(s) deactivated.")
