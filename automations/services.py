"""Changing automations: save (validated on the server), reorder, enable or disable, delete.

The dashboard, the admin and tests all go through these verbs; each checks the whole
automation (trigger, filters, actions and which fits which, SPEC R-AUTO-1 … R-AUTO-4) and
raises a ValidationError whose keys name the field at fault (`filters.0.value`).
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from automations import actions, conditions, engine
from automations.choices import DisableRuns, EndReason, RunStatus, Trigger
from automations.models import Automation, AutomationRun


def _next_priority(account, livemode, trigger) -> int:
    last = Automation.objects.filter(account=account, livemode=livemode, trigger=trigger).aggregate(
        last=Max("priority")
    )["last"]
    return 0 if last is None else last + 1


def clean(*, account, livemode: bool, name, trigger, filters, actions_) -> dict:
    """The automation's fields, normalized, or one ValidationError with every problem."""
    errors = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ["Give the automation a name."]
    elif len(name) > 120:
        errors["name"] = ["At most 120 characters."]
    if trigger not in Trigger.values:
        errors["trigger"] = ["Choose a trigger."]
    cleaned = {"name": name, "trigger": trigger}
    for field, check in (
        ("conditions", lambda: conditions.clean(filters, trigger)),
        ("actions", lambda: actions.clean(actions_, trigger, account=account, livemode=livemode)),
    ):
        try:
            cleaned[field] = check()
        except ValidationError as error:
            errors.update(error.message_dict)
    if errors:
        raise ValidationError(errors)
    return cleaned


@transaction.atomic
def save_automation(
    *,
    account,
    livemode: bool,
    name: str,
    trigger: str,
    filters: list,
    actions_: list,
    enabled: bool = True,
    automation: Automation | None = None,
) -> Automation:
    """Create an automation (last in its trigger's priority order) or change one.

    Runs in progress keep the steps they started with; a changed trigger moves the automation
    to the end of its new trigger's order.
    """
    cleaned = clean(
        account=account,
        livemode=livemode,
        name=name,
        trigger=trigger,
        filters=filters,
        actions_=actions_,
    )
    now = timezone.now()
    previous_trigger = None
    if automation is None:
        automation = Automation(
            account=account,
            livemode=livemode,
            enabled=enabled,
            created=now,
            priority=_next_priority(account, livemode, cleaned["trigger"]),
        )
    else:
        automation = Automation.objects.select_for_update().get(pk=automation.pk)
        previous_trigger = automation.trigger
        if automation.trigger != cleaned["trigger"]:
            automation.priority = _next_priority(account, livemode, cleaned["trigger"])
    automation.name = cleaned["name"]
    automation.trigger = cleaned["trigger"]
    automation.conditions = cleaned["conditions"]
    automation.actions = cleaned["actions"]
    automation.updated = now
    automation.save()
    engine.bump_version(account.pk, livemode, automation.trigger)
    if previous_trigger and previous_trigger != automation.trigger:
        engine.bump_version(account.pk, livemode, previous_trigger)
    return automation


@transaction.atomic
def reorder(*, account, livemode: bool, trigger: str, order: list[str]) -> list[Automation]:
    """Set the priority order of a trigger's automations (SPEC R-AUTO-5): `order` lists every
    one of them, first first."""
    mine = list(
        Automation.objects.select_for_update()
        .filter(account=account, livemode=livemode, trigger=trigger)
        .order_by("priority", "created")
    )
    if sorted(order) != sorted(a.pk for a in mine) or len(set(order)) != len(order):
        raise ValidationError(
            {"order": "The order must list each automation of this trigger exactly once."}
        )
    by_id = {a.pk: a for a in mine}
    now = timezone.now()
    changed = []
    for priority, automation_id in enumerate(order):
        automation = by_id[automation_id]
        if automation.priority != priority:
            automation.priority = priority
            automation.updated = now
            changed.append(automation)
    Automation.objects.bulk_update(changed, ["priority", "updated"])
    engine.bump_version(account.pk, livemode, trigger)
    return [by_id[pk] for pk in order]


def move(automation: Automation, *, by: int) -> list[Automation]:
    """Move an automation up (`by=-1`) or down (`by=1`) its trigger's order (keyboard users)."""
    order = list(
        Automation.objects.filter(
            account_id=automation.account_id,
            livemode=automation.livemode,
            trigger=automation.trigger,
        )
        .order_by("priority", "created")
        .values_list("id", flat=True)
    )
    position = order.index(automation.pk)
    target = min(max(position + by, 0), len(order) - 1)
    order.insert(target, order.pop(position))
    return reorder(
        account=automation.account,
        livemode=automation.livemode,
        trigger=automation.trigger,
        order=order,
    )


@transaction.atomic
def set_enabled(automation: Automation, *, enabled: bool, runs: str = DisableRuns.FINISH) -> int:
    """Enable, or disable and let its runs in progress finish or cancel them now (SPEC
    R-AUTO-7). Returns how many runs were canceled."""
    if runs not in DisableRuns.values:
        raise ValidationError({"runs": "Choose whether runs in progress finish or are canceled."})
    automation = Automation.objects.select_for_update().get(pk=automation.pk)
    automation.enabled = enabled
    automation.updated = timezone.now()
    automation.save(update_fields=["enabled", "updated"])
    engine.bump_version(automation.account_id, automation.livemode, automation.trigger)
    canceled = 0
    if not enabled and runs == DisableRuns.CANCEL:
        for run in AutomationRun.objects.filter(automation=automation, status=RunStatus.RUNNING):
            canceled += int(engine.cancel_run(run, reason=EndReason.AUTOMATION_DISABLED))
    return canceled


@transaction.atomic
def delete_automation(automation: Automation) -> None:
    """Delete an automation; its runs in progress are canceled first (their record goes too)."""
    for run in AutomationRun.objects.filter(automation=automation, status=RunStatus.RUNNING):
        engine.cancel_run(run, reason=EndReason.AUTOMATION_DISABLED)
    automation.delete()
    engine.bump_version(automation.account_id, automation.livemode, automation.trigger)
