"""Subscriptions: list, detail, and the finance actions on one (SPEC R-SUB, R-TRIAL)."""

from django.db.models import Q

from billing.choices import InvoiceStatus, SubscriptionStatus
from billing.clocks import now_for
from billing.forms import PauseCollectionForm, ResumeSubscriptionForm, SubscriptionFilterForm
from billing.models import Event, Invoice, Subscription
from billing.services import subscriptions as subs
from billing.views.actions import (
    Action,
    ObjectActionView,
    actions_by_slug,
    available_actions,
    local,
    next_due,
)
from billing.views.base import DetailView, ListView
from billing.views.customers import RELATED_LIMIT, items_prefetch

ENDED = (SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED)


def _running(subscription) -> bool:
    return subscription.status not in ENDED


def _cancel(subscription, data):
    subs.cancel_subscription(subscription)
    return "Subscription canceled."


def _cancel_at_period_end(subscription, data):
    ends = subs.cancel_subscription(subscription, at_period_end=True).cancel_at
    return f"The subscription will cancel at the end of its period ({local(ends)})."


def _keep(subscription, data):
    subs.update_subscription(subscription, cancel_at_period_end=False)
    return "The subscription will no longer cancel at the end of its period."


def _end_trial(subscription, data):
    subscription = subs.update_subscription(subscription, trial_end="now")
    return f"Trial ended: the subscription is now {subscription.get_status_display().lower()}."


def _resume(subscription, data):
    subscription = subs.resume_subscription(
        subscription, billing_cycle_anchor=data["billing_cycle_anchor"]
    )
    if subscription.status == SubscriptionStatus.PAUSED:
        return (
            "warning",
            "A resume invoice was created but not paid: the subscription stays paused until it is.",
        )
    return f"Subscription resumed: it is now {subscription.get_status_display().lower()}."


def _pause_collection(subscription, data):
    subs.update_subscription(subscription, pause_collection={"behavior": data["behavior"]})
    return "Payment collection paused: invoices are still created but not collected."


def _resume_collection(subscription, data):
    subs.update_subscription(subscription, pause_collection=None)
    return "Payment collection resumed."


SUBSCRIPTION_ACTIONS = actions_by_slug(
    Action(
        slug="end-trial",
        label="End trial now",
        question="End the trial now?",
        explain=lambda s: (
            "The trial ends now and a new billing period starts: its invoice is created now and "
            "charged about an hour later."
        ),
        confirm="End trial now",
        run=_end_trial,
        available=lambda s: s.status == SubscriptionStatus.TRIALING,
    ),
    Action(
        slug="resume",
        label="Resume subscription",
        question="Resume this paused subscription?",
        explain=lambda s: (
            "Resuming invoices the customer at once. The subscription leaves “paused” when that "
            "invoice is paid."
        ),
        confirm="Resume subscription",
        run=_resume,
        available=lambda s: s.status == SubscriptionStatus.PAUSED,
        form_class=ResumeSubscriptionForm,
    ),
    Action(
        slug="pause-collection",
        label="Pause payment collection",
        question="Pause payment collection?",
        explain=lambda s: (
            "The subscription keeps running and invoices keep being created, but none is "
            "collected until you resume collection."
        ),
        confirm="Pause collection",
        run=_pause_collection,
        available=lambda s: (
            s.status not in (*ENDED, SubscriptionStatus.PAUSED, SubscriptionStatus.INCOMPLETE)
            and not s.pause_collection_behavior
        ),
        form_class=PauseCollectionForm,
    ),
    Action(
        slug="resume-collection",
        label="Resume payment collection",
        question="Resume payment collection?",
        explain=lambda s: "Invoices created from now on are collected again as usual.",
        confirm="Resume collection",
        run=_resume_collection,
        available=lambda s: _running(s) and bool(s.pause_collection_behavior),
    ),
    Action(
        slug="keep",
        label="Don't cancel",
        question="Keep this subscription?",
        explain=lambda s: (
            f"It was set to cancel on {local(s.cancel_at or s.current_period_end)}. "
            "It will renew as usual instead."
        ),
        confirm="Keep subscription",
        run=_keep,
        available=lambda s: _running(s) and s.cancel_at_period_end,
    ),
    Action(
        slug="cancel-at-period-end",
        label="Cancel at period end",
        question="Cancel at the end of the current period?",
        explain=lambda s: (
            f"The subscription stays {s.get_status_display().lower()} until "
            f"{local(s.current_period_end)}, then cancels without another invoice. "
            "You can undo this until then."
        ),
        confirm="Cancel at period end",
        run=_cancel_at_period_end,
        available=lambda s: (
            _running(s) and not s.cancel_at_period_end and s.status != SubscriptionStatus.INCOMPLETE
        ),
    ),
    Action(
        slug="cancel",
        label="Cancel now",
        question="Cancel this subscription now?",
        explain=lambda s: (
            "It ends immediately: no more invoices, and its open invoices are no longer collected "
            "automatically. This cannot be undone."
        ),
        confirm="Cancel subscription now",
        run=_cancel,
        available=_running,
        danger=True,
    ),
)


class SubscriptionListView(ListView):
    """Subscriptions with their customer and plan, filterable by status."""

    model = Subscription
    filter_form_class = SubscriptionFilterForm
    table_template = "dashboard/subscriptions/_table.html"
    title = "Subscriptions"

    def decorate(self, queryset):
        return queryset.select_related("customer").prefetch_related(items_prefetch())


class SubscriptionDetailView(DetailView):
    """A subscription with its items, invoices, timeline of events, next due jobs and actions."""

    model = Subscription
    template_name = "dashboard/subscriptions/detail.html"

    def get_queryset(self):
        return (
            super()
            .get_queryset()
            .select_related("customer", "default_payment_method", "latest_invoice", "test_clock")
            .prefetch_related(items_prefetch())
        )

    def get_context(self, subscription):
        invoices = list(
            self.scope(Invoice)
            .filter(subscription=subscription)
            .order_by("-created", "-pk")[:RELATED_LIMIT]
        )
        # The timeline: what happened to the subscription and to its recent invoices.
        events = (
            self.scope(Event)
            .filter(Q(object_id=subscription.pk) | Q(object_id__in=[i.pk for i in invoices]))
            .order_by("-created", "-pk")
        )
        unsettled = [i for i in invoices if i.status in (InvoiceStatus.DRAFT, InvoiceStatus.OPEN)]
        now = now_for(subscription)
        return {
            "subscription": subscription,
            "invoices": invoices,
            "events": events[: RELATED_LIMIT * 2],
            "related_limit": RELATED_LIMIT,
            "due_jobs": next_due(subscription, *unsettled, now=now),
            "clock_now": now if subscription.test_clock_id else None,
            "actions": available_actions(
                self.request, SUBSCRIPTION_ACTIONS, subscription, platform_created_only=True
            ),
        }


class SubscriptionActionView(ObjectActionView):
    """Confirm and run one of SUBSCRIPTION_ACTIONS."""

    model = Subscription
    actions = SUBSCRIPTION_ACTIONS
    detail_url_name = "dashboard:subscription_detail"
    noun = "subscription"
    platform_created_only = True
