"""Webhooks: endpoints with their success rate, each endpoint's deliveries and attempts, resend,
bulk replay, test events, secret roll (SPEC R-EVT-2, R-EVT-3).

Every member may look. Owners manage endpoints (they hold signing secrets, like API keys);
owners, finance and support may resend and replay deliveries. Deliveries themselves run in
workers: these pages only ask the webhook services for them.

A platform member working inside a connected account (`billing.middleware.is_acting`) may look,
resend and replay, but not add, edit, enable, disable, test, roll the secret of or delete an
endpoint: an endpoint the platform made there would keep receiving the account's events after it
disconnects, when the platform must stop receiving them (SPEC R-CON-7). The edit and delete
views refuse it in `billing/urls.py` (`platform_may_act=False`); creation and the endpoint
actions below.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import View

from billing.choices import AccountType, WebhookEndpointStatus
from billing.forms import (
    EVENT_TYPES,
    ReplayDeliveriesForm,
    RollSecretForm,
    WebhookDeliveryFilterForm,
    WebhookEndpointFilterForm,
    WebhookEndpointForm,
    format_delays,
)
from billing.middleware import is_acting
from billing.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from billing.pagination import InvalidCursor, keyset_page
from billing.services import webhooks as webhook_services
from billing.views.actions import error_messages, errors_onto, local
from billing.views.base import (
    DetailView,
    ListView,
    MemberRequiredMixin,
    _filter_query,
    get_scoped_or_404,
    render_filtered,
)
from billing.webhooks.delivery import retry_delays

# The success rate covers this much recent activity: long enough to mean something, short
# enough that an endpoint fixed last week does not look broken.
SUCCESS_WINDOW = timedelta(days=7)


def _forbid_unless(request, permission: str) -> None:
    if not getattr(request.membership, permission):
        raise PermissionDenied("Your role does not allow this.")


def _forbid_acting(request) -> None:
    """SPEC R-CON-7: endpoints inside a connected account are its own team's to manage (the
    same refusal as `MemberRequiredMixin.platform_may_act = False`)."""
    if is_acting(request.membership):
        raise PermissionDenied("Only the connected account's own team may do this.")


def success_rates(endpoint_ids, *, since) -> dict[str, dict]:
    """Per endpoint, its settled deliveries since `since` and the share that succeeded.

    One grouped query for the whole page. Pending deliveries are not counted: they have not
    succeeded or failed yet.
    """
    rows = (
        WebhookDelivery.objects.filter(endpoint_id__in=list(endpoint_ids), created__gte=since)
        .values("endpoint_id")
        .annotate(
            succeeded=Count("id", filter=Q(status="succeeded")),
            failed=Count("id", filter=Q(status="failed")),
            pending=Count("id", filter=Q(status="pending")),
        )
    )
    rates = {}
    for row in rows:
        settled = row["succeeded"] + row["failed"]
        rates[row["endpoint_id"]] = {
            **row,
            "settled": settled,
            "rate": round(100 * row["succeeded"] / settled) if settled else None,
        }
    return rates


def _allow_connect(request) -> bool:
    return request.account.type != AccountType.CONNECTED


class WebhookListView(ListView):
    """The account's endpoints in this mode, with their recent success rate, and a form to add
    one (owners)."""

    model = WebhookEndpoint
    filter_form_class = WebhookEndpointFilterForm
    template_name = "dashboard/webhooks/list.html"
    table_template = "dashboard/webhooks/_table.html"
    title = "Webhooks"
    create_form = None

    def paginate(self, queryset, base):
        page = super().paginate(queryset, base)
        # The page's endpoints get their figures in one query, not one per row.
        since = timezone.now() - SUCCESS_WINDOW
        rates = success_rates([endpoint.pk for endpoint in page.items], since=since)
        for endpoint in page.items:
            endpoint.health = rates.get(endpoint.pk)
        return page

    def get_context(self):
        can_manage = self.request.membership.can_manage_account
        return {
            "can_manage": can_manage,
            "create_form": self.create_form
            or WebhookEndpointForm(allow_connect=_allow_connect(self.request)),
            "window_days": SUCCESS_WINDOW.days,
        }

    def post(self, request):
        """Add an endpoint (owners, not a platform acting as the account); its page then shows
        the signing secret."""
        _forbid_unless(request, "can_manage_account")
        _forbid_acting(request)
        form = WebhookEndpointForm(request.POST, allow_connect=_allow_connect(request))
        if form.is_valid():
            try:
                endpoint = webhook_services.create_webhook_endpoint(
                    request.account, livemode=request.livemode, **form.service_fields()
                )
            except ValidationError as error:
                errors_onto(form, error)
            else:
                messages.success(
                    request,
                    "Endpoint added. Copy its signing secret below into your webhook handler.",
                )
                return redirect("dashboard:webhook_detail", endpoint.pk)
        self.create_form = form
        response = self.get(request)
        response.status_code = 400
        return response


def render_endpoint(request, endpoint, *, replay_form=None, roll_form=None, status=200):
    """One endpoint's page: settings, signing secret (owners), its deliveries with filters,
    and the bulk-replay and secret-roll forms (bound and invalid ones passed in)."""
    base = WebhookDelivery.objects.filter(endpoint=endpoint)
    form = WebhookDeliveryFilterForm(request.GET or None)
    queryset = form.filter(base).select_related("event").defer("event__data")
    after = request.GET.get("after") or None
    before = None if after else request.GET.get("before") or None
    try:
        page = keyset_page(
            queryset,
            after=after,
            before=before,
            limit=settings.DASHBOARD_PAGE_SIZE,
            cursor_queryset=base,
        )
    except InvalidCursor:
        page = keyset_page(queryset, limit=settings.DASHBOARD_PAGE_SIZE)
    now = timezone.now()
    health = success_rates([endpoint.pk], since=now - SUCCESS_WINDOW).get(endpoint.pk)
    owner = request.membership.can_manage_account
    context = {
        "endpoint": endpoint,
        "health": health,
        "window_days": SUCCESS_WINDOW.days,
        "form": form,
        "page": page,
        "results_id": "deliveries",
        "filter_query": _filter_query(request.GET),
        "event_types": EVENT_TYPES,
        "retry_text": format_delays(retry_delays(endpoint)),
        "custom_retries": bool(endpoint.retry_schedule),
        "can_manage": owner,
        "can_resend": request.membership.can_write,
        "previous_secret_active": bool(
            owner
            and endpoint.secret_previous
            and endpoint.secret_previous_expires_at
            and endpoint.secret_previous_expires_at > now
        ),
        "replay_form": replay_form
        or ReplayDeliveriesForm(
            initial={"since": _local_input(now - timedelta(days=1)), "until": _local_input(now)}
        ),
        "roll_form": roll_form or RollSecretForm(),
    }
    return render_filtered(
        request,
        context,
        page_template="dashboard/webhooks/detail.html",
        results_template="dashboard/webhooks/_deliveries.html",
        results_id="deliveries",
        status=status,
    )


class WebhookDetailView(MemberRequiredMixin, View):
    """One endpoint of the account and mode (see `render_endpoint`)."""

    def get(self, request, pk):
        endpoint = get_scoped_or_404(request, WebhookEndpoint, pk=pk)
        return render_endpoint(request, endpoint)


def _local_input(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


class WebhookEditView(MemberRequiredMixin, View):
    """Change an endpoint's URL, events, description, Connect flag or retry schedule."""

    permission = "can_manage_account"

    def get(self, request, pk):
        endpoint = get_scoped_or_404(request, WebhookEndpoint, pk=pk)
        form = WebhookEndpointForm(
            initial=WebhookEndpointForm.initial_for(endpoint), allow_connect=False
        )
        return self.render(endpoint, form)

    def post(self, request, pk):
        endpoint = get_scoped_or_404(request, WebhookEndpoint, pk=pk)
        form = WebhookEndpointForm(request.POST, allow_connect=False)
        if form.is_valid():
            try:
                webhook_services.update_webhook_endpoint(endpoint, **form.service_fields())
            except ValidationError as error:
                errors_onto(form, error)
            else:
                messages.success(request, "Endpoint saved.")
                return redirect("dashboard:webhook_detail", endpoint.pk)
        return self.render(endpoint, form, status=400)

    def render(self, endpoint, form, status=200):
        context = {"endpoint": endpoint, "form": form}
        return render(self.request, "dashboard/webhooks/edit.html", context, status=status)


def _enable(request, endpoint):
    webhook_services.update_webhook_endpoint(endpoint, disabled=False)
    messages.success(request, "Endpoint enabled: new events are sent to it again.")


def _disable(request, endpoint):
    webhook_services.update_webhook_endpoint(endpoint, disabled=True)
    messages.success(request, "Endpoint disabled: no events are sent to it until you enable it.")


def _send_test(request, endpoint):
    webhook_services.send_test_event(endpoint)
    messages.success(request, "Test event sent: its delivery appears below within a few seconds.")


def _roll(request, endpoint):
    form = RollSecretForm(request.POST)
    if not form.is_valid():
        return form
    hours = form.cleaned_data["overlap_hours"]
    webhook_services.roll_endpoint_secret(endpoint, overlap_hours=hours)
    if hours:
        messages.success(
            request,
            f"New signing secret created. The old one keeps signing beside it for {hours} "
            f"hour{'s' if hours != 1 else ''}.",
        )
    else:
        messages.success(request, "New signing secret created; the old one no longer signs.")
    return None


def _replay(request, endpoint):
    form = ReplayDeliveriesForm(request.POST)
    if not form.is_valid():
        return form
    data = form.cleaned_data
    count = webhook_services.replay_deliveries(
        endpoint,
        since=data["since"],
        until=data["until"],
        failed_only=data["which"] == "failed",
    )
    if count:
        messages.success(
            request, f"{count} deliver{'ies' if count != 1 else 'y'} queued to be sent again."
        )
    else:
        messages.info(request, "No deliveries in that range to send again.")
    return None


# slug → (handler, permission). Handlers either act and return None, or return an invalid form.
# The owners' actions manage the endpoint: a platform acting as the account may not use them.
ENDPOINT_ACTIONS = {
    "enable": (_enable, "can_manage_account"),
    "disable": (_disable, "can_manage_account"),
    "test": (_send_test, "can_manage_account"),
    "roll-secret": (_roll, "can_manage_account"),
    "replay": (_replay, "can_write"),
}


class WebhookActionView(MemberRequiredMixin, View):
    """POST one of ENDPOINT_ACTIONS on an endpoint, then back to its page."""

    http_method_names = ["post"]

    def post(self, request, pk, action):
        endpoint = get_scoped_or_404(request, WebhookEndpoint, pk=pk)
        try:
            handler, permission = ENDPOINT_ACTIONS[action]
        except KeyError:
            raise Http404(f"No action {action!r}.") from None
        _forbid_unless(request, permission)
        if permission == "can_manage_account":
            _forbid_acting(request)
        try:
            invalid = handler(request, endpoint)
        except ValidationError as error:
            for line in error_messages(error):
                messages.error(request, line)
            invalid = None
        if invalid is not None:
            forms = {"replay_form" if action == "replay" else "roll_form": invalid}
            return render_endpoint(request, endpoint, status=400, **forms)
        return redirect("dashboard:webhook_detail", endpoint.pk)


class WebhookDeleteView(MemberRequiredMixin, View):
    """GET: confirm; POST: delete the endpoint and its delivery history."""

    permission = "can_manage_account"

    def get(self, request, pk):
        endpoint = get_scoped_or_404(request, WebhookEndpoint, pk=pk)
        context = {"endpoint": endpoint, "delivery_count": endpoint.deliveries.count()}
        return render(request, "dashboard/webhooks/delete.html", context)

    def post(self, request, pk):
        endpoint = get_scoped_or_404(request, WebhookEndpoint, pk=pk)
        webhook_services.delete_webhook_endpoint(endpoint)
        messages.success(request, f"Endpoint {endpoint.url} deleted.")
        return redirect("dashboard:webhooks")


class DeliveryDetailView(DetailView):
    """One delivery: its event, every attempt (time, duration, answer, error), and resend."""

    model = WebhookDelivery
    template_name = "dashboard/webhooks/delivery.html"

    def get_queryset(self):
        return super().get_queryset().select_related("endpoint", "event")

    def get_context(self, delivery):
        return {
            "delivery": delivery,
            "endpoint": delivery.endpoint,
            "attempts": WebhookAttempt.objects.filter(delivery=delivery).order_by(
                "-started_at", "-pk"
            ),
            "can_resend": self.request.membership.can_write,
            "endpoint_disabled": delivery.endpoint.status != WebhookEndpointStatus.ENABLED,
        }


class DeliveryResendView(MemberRequiredMixin, View):
    """Send one delivery again now, whatever its status."""

    permission = "can_write"
    http_method_names = ["post"]

    def post(self, request, pk):
        delivery = get_scoped_or_404(request, WebhookDelivery, pk=pk)
        try:
            webhook_services.resend_delivery(delivery)
        except ValidationError as error:
            for line in error_messages(error):
                messages.error(request, line)
        else:
            messages.success(
                request, f"Delivery queued to be sent again at {local(timezone.now())}."
            )
        return redirect("dashboard:webhook_delivery", delivery.pk)
