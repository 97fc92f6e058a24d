"""The Automations pages: the list by trigger (priority by drag or up/down), the builder, an
automation's page with its latest runs, all runs (filtered, a page at a time), one run with its
steps (SPEC R-AUTO-5 … R-AUTO-8).

Everyone in the account may look; owners and finance change things (`can_manage_billing`).
"""

from functools import partial

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, F, Q
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from automations import actions, builder, conditions, engine, examples, services, summaries
from automations.choices import (
    ActionKind,
    ConditionKind,
    DisableRuns,
    RunStatus,
    Trigger,
)
from automations.forms import RunFilterForm
from automations.models import Automation, AutomationRun
from billing.models import Price, Product
from billing.views.base import ListView, MemberRequiredMixin, get_scoped_or_404

# An automation's page shows its latest runs; the runs list, filtered by it, has them all.
RECENT_RUNS = 10


class ManageMixin(MemberRequiredMixin):
    """Views that change automations: owners and finance only."""

    permission = "can_manage_billing"


def _groups(request) -> list[dict]:
    automations = list(
        Automation.objects.filter(account=request.account, livemode=request.livemode)
        .annotate(running=Count("runs", filter=Q(runs__status=RunStatus.RUNNING)))
        .order_by("priority", "created")
    )
    groups = []
    for trigger in Trigger:
        mine = [a for a in automations if a.trigger == trigger]
        for automation in mine:
            automation.summary = summaries.describe(automation)
        groups.append({"trigger": trigger.value, "label": trigger.label, "automations": mine})
    return groups


def _group_response(request, trigger: str):
    """One trigger's list, for htmx swaps after a reorder or a move."""
    group = next(g for g in _groups(request) if g["trigger"] == trigger)
    return render(
        request,
        "automations/_group.html",
        {"group": group, "can_manage": request.membership.can_manage_billing},
    )


class AutomationListView(MemberRequiredMixin, View):
    """Automations grouped by trigger, each group in priority order."""

    def get(self, request):
        user_email = request.user.email or ""
        context = {
            "groups": _groups(request),
            "can_manage": request.membership.can_manage_billing,
            "examples": examples.examples(
                team_email=user_email, currency=request.account.default_currency
            ),
            "disable_choices": DisableRuns.choices,
        }
        return render(request, "automations/list.html", context)


class ReorderView(ManageMixin, View):
    """Save a trigger's new priority order at once (drag and drop)."""

    def post(self, request):
        trigger = request.POST.get("trigger", "")
        order = request.POST.getlist("order")
        if len(order) == 1 and "," in order[0]:
            order = order[0].split(",")
        try:
            services.reorder(
                account=request.account, livemode=request.livemode, trigger=trigger, order=order
            )
        except ValidationError as error:
            if request.htmx:
                return (
                    _group_response(request, trigger)
                    if trigger in Trigger.values
                    else (render(request, "automations/_error.html", {"error": error}, status=400))
                )
            messages.error(request, " ".join(error.messages))
            return redirect("automations:list")
        if request.htmx:
            return _group_response(request, trigger)
        messages.success(request, "Priority saved.")
        return redirect("automations:list")


class MoveView(ManageMixin, View):
    """Move one automation up or down its trigger's order (the keyboard way to reorder)."""

    def post(self, request, pk):
        automation = get_scoped_or_404(request, Automation, pk=pk)
        by = -1 if request.POST.get("direction") == "up" else 1
        services.move(automation, by=by)
        if request.htmx:
            return _group_response(request, automation.trigger)
        return redirect(f"{reverse('automations:list')}#group-{automation.trigger}")


class ToggleView(ManageMixin, View):
    """Enable, or disable letting runs finish or canceling them (SPEC R-AUTO-7)."""

    def post(self, request, pk):
        automation = get_scoped_or_404(request, Automation, pk=pk)
        enable = request.POST.get("enabled") == "1"
        runs = request.POST.get("runs") or DisableRuns.FINISH
        try:
            canceled = services.set_enabled(automation, enabled=enable, runs=runs)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("automations:list")
        if enable:
            messages.success(request, f"“{automation.name}” is enabled.")
        elif canceled:
            plural = "run" if canceled == 1 else "runs"
            messages.success(
                request, f"“{automation.name}” is disabled; {canceled} {plural} canceled."
            )
        else:
            messages.success(
                request, f"“{automation.name}” is disabled; runs in progress will finish."
            )
        return redirect(request.POST.get("next") or reverse("automations:list"))


class DeleteView(ManageMixin, View):
    """GET: confirm; POST: delete the automation, canceling its runs in progress."""

    def get(self, request, pk):
        automation = get_scoped_or_404(request, Automation, pk=pk)
        running = automation.runs.filter(status=RunStatus.RUNNING).count()
        context = {"automation": automation, "running": running}
        return render(request, "automations/delete.html", context)

    def post(self, request, pk):
        automation = get_scoped_or_404(request, Automation, pk=pk)
        services.delete_automation(automation)
        messages.success(request, f"“{automation.name}” deleted.")
        return redirect("automations:list")


class BuilderView(ManageMixin, View):
    """Create an automation (optionally from an example) or edit one."""

    def _automation(self, pk):
        return get_scoped_or_404(self.request, Automation, pk=pk) if pk else None

    def get(self, request, pk=None):
        automation = self._automation(pk)
        name, trigger, filters, rows = "", Trigger.SUBSCRIPTION_PAYMENT_FAILED.value, [], []
        if automation is not None:
            name, trigger = automation.name, automation.trigger
            filters, rows = builder.rows_from_data(automation.conditions, automation.actions)
        elif request.GET.get("example"):
            example = examples.get(
                request.GET["example"],
                team_email=request.user.email or "",
                currency=request.account.default_currency,
            )
            if example is not None:
                name, trigger = example.title, example.trigger
                filters, rows = builder.rows_from_data(example.filters, example.actions)
        elif request.GET.get("trigger") in Trigger.values:
            trigger = request.GET["trigger"]
        return self.render_builder(automation, name, trigger, filters, rows, {})

    def post(self, request, pk=None):
        automation = self._automation(pk)
        name = request.POST.get("name", "").strip()
        trigger = request.POST.get("trigger", "")
        filters, rows = builder.rows_from_post(request.POST)
        op = request.POST.get("op", "save")
        if op != "save":
            filters, rows = self.edit_rows(op, trigger, filters, rows)
            return self.render_builder(automation, name, trigger, filters, rows, {})
        data_filters, data_actions, errors = builder.data_from_rows(filters, rows, trigger)
        if not errors:
            try:
                saved = services.save_automation(
                    account=request.account,
                    livemode=request.livemode,
                    name=name,
                    trigger=trigger,
                    filters=data_filters,
                    actions_=data_actions,
                    automation=automation,
                )
            except ValidationError as error:
                errors = error.message_dict
            else:
                verb = "saved" if automation else "created"
                messages.success(request, f"Automation “{saved.name}” {verb}.")
                return redirect("automations:detail", saved.pk)
        return self.render_builder(automation, name, trigger, filters, rows, errors, status=400)

    def edit_rows(self, op, trigger, filters, rows):
        """Add or remove a row, or apply a new trigger (dropping what does not fit it)."""
        if op == "add_filter":
            kind = self.request.POST.get("new_filter", "")
            if kind in ConditionKind.values:
                row = dict.fromkeys(builder.FILTER_FIELDS, "")
                row.update(kind=kind, products=[], currency=self.request.account.default_currency)
                row["interval"] = "month" if kind == ConditionKind.SUBSCRIPTION_INTERVAL else ""
                filters.append(row)
        elif op == "add_action":
            kind = self.request.POST.get("new_action", "")
            if kind in ActionKind.values:
                row = dict.fromkeys(builder.ACTION_FIELDS, "")
                row.update(kind=kind, delay="0", when="after")
                if kind == ActionKind.EMAIL_TEAM_MEMBER:
                    row["to"] = self.request.user.email or ""
                if kind == ActionKind.CREDIT_CUSTOMER_BALANCE:
                    row["currency"] = self.request.account.default_currency
                rows.append(row)
        elif op.startswith("remove_filter:"):
            index = _int(op.split(":", 1)[1])
            if index is not None and 0 <= index < len(filters):
                filters.pop(index)
        elif op.startswith("remove_action:"):
            index = _int(op.split(":", 1)[1])
            if index is not None and 0 <= index < len(rows):
                rows.pop(index)
        elif op == "change_trigger" and trigger in Trigger.values:
            fitting = set(actions.fitting(trigger))
            kept = [row for row in rows if row["kind"] in fitting]
            kept_filters = [
                f for f in filters if trigger in conditions.TRIGGERS_FOR.get(f["kind"], ())
            ]
            if len(kept) < len(rows) or len(kept_filters) < len(filters):
                messages.info(
                    self.request,
                    "Filters and actions that do not fit the new trigger were removed.",
                )
            filters, rows = kept_filters, kept
        return filters, rows

    def render_builder(self, automation, name, trigger, filters, rows, errors, status=200):
        request = self.request
        builder.attach_errors(filters, errors, "filters")
        builder.attach_errors(rows, errors, "actions")
        from_due_date = trigger == Trigger.INVOICE_DUE_DATE_APPROACHING
        for row in rows:
            row["label"] = (
                ActionKind(row["kind"]).label if row["kind"] in ActionKind.values else row["kind"]
            )
        for row in filters:
            row["label"] = (
                ConditionKind(row["kind"]).label
                if row["kind"] in ConditionKind.values
                else row["kind"]
            )
        products = Product.objects.filter(account=request.account, livemode=request.livemode)
        prices = (
            Price.objects.filter(
                account=request.account, livemode=request.livemode, active=True, type="recurring"
            )
            .select_related("product")
            .order_by("product__name", "unit_amount")
        )
        top_errors = [
            m
            for k, ms in errors.items()
            for m in ms
            if k in ("name", "trigger", "actions", "filters", "__all__")
        ]
        context = {
            "automation": automation,
            "name": name,
            "trigger": trigger,
            "triggers": Trigger.choices,
            "filters": filters,
            "rows": rows,
            "errors": errors,
            "error_count": sum(len(v) for v in errors.values()),
            "top_errors": top_errors,
            "filter_kinds": [
                (kind, ConditionKind(kind).label)
                for kind in ConditionKind.values
                if trigger in conditions.TRIGGERS_FOR[kind]
            ],
            "action_kinds": [(kind, ActionKind(kind).label) for kind in actions.fitting(trigger)]
            if trigger in Trigger.values
            else [],
            "from_due_date": from_due_date,
            "products": products.order_by("name"),
            "prices": prices,
            "intervals": conditions.INTERVALS.items(),
        }
        return render(request, "automations/builder.html", context, status=status)


def _int(text):
    try:
        return int(text)
    except ValueError:
        return None


class AutomationDetailView(MemberRequiredMixin, View):
    """One automation: what it does, its latest runs and a link to all of them."""

    def get(self, request, pk):
        automation = get_scoped_or_404(request, Automation, pk=pk)
        recent = automation.runs.select_related("automation", "customer").prefetch_related("steps")
        runs = list(recent[:RECENT_RUNS])
        context = {
            "automation": automation,
            "summary": summaries.describe(automation),
            "filters": summaries.filters(automation),
            "steps": summaries.actions(automation),
            "runs": runs,
            # Counted over all its runs, not only the few shown.
            "running": automation.runs.filter(status=RunStatus.RUNNING).count(),
            "can_manage": request.membership.can_manage_billing,
            "disable_choices": DisableRuns.choices,
        }
        return render(request, "automations/detail.html", context)


class RunListView(ListView):
    """Every run of the account and mode, newest first, filtered by status, automation, customer
    and start date, a page at a time (SPEC R-AUTO-8)."""

    model = AutomationRun
    template_name = "automations/runs.html"
    table_template = "automations/_runs_table.html"
    title = "Runs"

    @property
    def filter_form_class(self):
        # The automation filter offers (and accepts) only this account's automations in this mode.
        return partial(RunFilterForm, automations=self.scope(Automation))

    def get_queryset(self):
        # Runs have no `created`: keyset pages (and the date filters) go by when they started,
        # which is the runs' own order (and the (account, livemode, started_at) index).
        return super().get_queryset().annotate(created=F("started_at"))

    def decorate(self, queryset):
        return queryset.select_related("automation", "customer").prefetch_related("steps")


class RunDetailView(MemberRequiredMixin, View):
    """One run: the event that matched, each step and its state."""

    def get(self, request, pk):
        run = get_scoped_or_404(
            request, AutomationRun.objects.select_related("automation", "customer"), pk=pk
        )
        context = {
            "run": run,
            "steps": list(run.steps.all()),
            "can_manage": request.membership.can_manage_billing,
        }
        return render(request, "automations/run.html", context)


class RunCancelView(ManageMixin, View):
    """Cancel a run in progress (SPEC R-AUTO-8)."""

    def post(self, request, pk):
        run = get_scoped_or_404(request, AutomationRun, pk=pk)
        if engine.cancel_run(run):
            messages.success(request, "Run canceled: its waiting steps will not run.")
        else:
            messages.warning(request, "This run had already ended.")
        return redirect(request.POST.get("next") or reverse("automations:run", args=[run.pk]))
