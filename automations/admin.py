"""Support's view of automations and their runs, with a cancel-run action (SPEC R-AUTO-8)."""

from django.contrib import admin, messages
from django.utils import timezone

from automations import engine, summaries
from automations.models import Automation, AutomationRun, RunStep, TriggerMatch


@admin.register(Automation)
class AutomationAdmin(admin.ModelAdmin):
    list_display = ("name", "trigger", "priority", "enabled", "account", "livemode", "updated")
    list_filter = ("trigger", "enabled", "livemode")
    search_fields = ("id", "name", "account__id", "account__name")
    # Filters and actions are checked by the builder's service; support reads them here.
    readonly_fields = (
        "id",
        "account",
        "livemode",
        "trigger",
        "conditions",
        "actions",
        "described",
        "created",
        "updated",
    )
    fields = (
        "id",
        "account",
        "livemode",
        "name",
        "trigger",
        "priority",
        "enabled",
        "described",
        "conditions",
        "actions",
        "created",
        "updated",
    )

    @admin.display(description="In words")
    def described(self, obj):
        return summaries.describe(obj)

    def has_add_permission(self, request):
        # Automations are built in the dashboard, where every field is validated.
        return False

    def save_model(self, request, obj, form, change):
        obj.updated = timezone.now()
        super().save_model(request, obj, form, change)
        # Matching caches compiled automations until their trigger's version moves.
        engine.bump_version(obj.account_id, obj.livemode, obj.trigger)


class RunStepInline(admin.TabularInline):
    model = RunStep
    extra = 0
    can_delete = False
    fields = ("position", "kind", "params", "due_at", "status", "done_at", "note", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.action(description="Cancel the selected runs")
def cancel_runs(modeladmin, request, queryset):
    canceled = sum(int(engine.cancel_run(run)) for run in queryset)
    modeladmin.message_user(request, f"{canceled} run(s) canceled.", messages.SUCCESS)


@admin.register(AutomationRun)
class AutomationRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "automation",
        "trigger",
        "object_id",
        "status",
        "end_reason",
        "started_at",
        "ended_at",
    )
    list_filter = ("status", "trigger", "livemode")
    search_fields = ("id", "object_id", "event_id", "automation__name", "account__id")
    list_select_related = ("automation",)
    actions = [cancel_runs]
    inlines = [RunStepInline]
    readonly_fields = (
        "id",
        "account",
        "livemode",
        "automation",
        "trigger",
        "object_id",
        "customer",
        "event_id",
        "test_clock",
        "status",
        "end_reason",
        "retry_days",
        "started_at",
        "ended_at",
    )

    def has_add_permission(self, request):
        return False


@admin.register(TriggerMatch)
class TriggerMatchAdmin(admin.ModelAdmin):
    list_display = ("trigger", "object_id", "taken", "automation", "checked", "event_id", "created")
    list_filter = ("trigger", "taken", "livemode")
    search_fields = ("object_id", "event_id")
    readonly_fields = (
        "account",
        "livemode",
        "trigger",
        "object_id",
        "cause",
        "event_id",
        "taken",
        "automation",
        "run",
        "checked",
        "created",
    )

    def has_add_permission(self, request):
        return False
