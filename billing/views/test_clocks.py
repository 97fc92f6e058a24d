"""Test clocks: create one, put customers with test cards and subscriptions on it, advance it, and
watch statuses, invoices and events change (SPEC R-CLOCK-1, R-CLOCK-2). Test mode only.

Advancing runs in a django-q2 worker once the request commits; while the clock is `advancing`
the page polls its status every second with htmx (or offers a refresh link without JS) and
reloads once it is `ready`.
"""

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Prefetch, Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from billing import periods
from billing.choices import Interval, PriceType, TestClockStatus
from billing.forms import AdvanceClockForm, ClockCustomerForm, ClockFilterForm, TestClockForm
from billing.middleware import is_acting
from billing.models import Customer, Event, Invoice, Price, Subscription, TestClock
from billing.services import subscriptions as subs
from billing.services.customers import add_card, create_customer
from billing.services.test_clocks import advance_test_clock, create_test_clock, delete_test_clock
from billing.views.actions import error_messages, local
from billing.views.base import DetailView, ListView, MemberRequiredMixin, get_scoped_or_404

# The quick steps of the clock page: one day, one week, one month (same day next month).
STEPS = {
    "day": ("+1 day", lambda t: t + timedelta(days=1)),
    "week": ("+1 week", lambda t: t + timedelta(weeks=1)),
    "month": ("+1 month", lambda t: periods.shift(t, Interval.MONTH, 1, 1)),
}

# How many of the clock's latest events its page shows.
EVENT_LIMIT = 25


def _forbid_unless_billing_manager(request):
    if not request.membership.can_manage_billing:
        raise PermissionDenied("Your role does not allow this.")


def _form_errors_from(form, error: ValidationError, fields: dict[str, str]) -> None:
    """Put a service's errors on the form: `fields` maps service keys to form fields."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for key, errors in error.error_dict.items():
        field = fields.get(key, key if key in form.fields else None)
        if field is None:
            for message in error_messages(ValidationError({key: errors})):
                form.add_error(None, message)
        else:
            form.add_error(field, errors)


def _card(number: str, clock: TestClock) -> dict:
    """A test card valid for ten years of the clock's time (its expiry is judged on it)."""
    return {
        "number": number,
        "exp_month": 12,
        "exp_year": clock.frozen_time.year + 10,
        "cvc": "123",
    }


@transaction.atomic
def add_clock_customer(
    clock: TestClock,
    *,
    email: str,
    name: str = "",
    card: str = "",
    price=None,
    trial_days=None,
    application=None,
):
    """A customer on `clock`, with a default test card and a subscription to `price`, all or
    nothing. A declined first payment leaves an `incomplete` subscription (allow_incomplete).
    `application` is the platform when it acts inside the clock's connected account: the
    subscription records it, so the platform may change it later (SPEC R-CON-5)."""
    customer = create_customer(
        clock.account, livemode=False, email=email, name=name, test_clock=clock
    )
    if card:
        add_card(customer, card=_card(card, clock), set_default=True)
    subscription = None
    if price is not None:
        customer.refresh_from_db()
        subscription = subs.create_subscription(
            customer,
            items=[{"price": price}],
            trial_period_days=trial_days,
            application=application,
        )
    return customer, subscription


def recurring_prices(request):
    """The account's active recurring prices in test mode, for the "Subscribe to" choice."""
    return (
        Price.objects.filter(
            account=request.account, livemode=False, active=True, type=PriceType.RECURRING
        )
        .select_related("product")
        .order_by("product__name", "unit_amount", "pk")
    )


def _default_frozen_time() -> str:
    return timezone.localtime().strftime("%Y-%m-%dT%H:%M")


class TestClockListView(ListView):
    """Test clocks with how many customers each carries, and a form for a new one (test mode)."""

    __test__ = False  # not a pytest test class, whatever its name

    model = TestClock
    filter_form_class = ClockFilterForm
    template_name = "dashboard/test_clocks/list.html"
    table_template = "dashboard/test_clocks/_table.html"
    title = "Test clocks"
    create_form = None

    def decorate(self, queryset):
        return queryset.annotate(customer_count=Count("customers"))

    def get_context(self):
        can_create = self.request.membership.can_manage_billing and not self.request.livemode
        return {
            "can_create": can_create,
            "create_form": self.create_form
            or TestClockForm(initial={"frozen_time": _default_frozen_time()}),
        }

    def post(self, request):
        _forbid_unless_billing_manager(request)
        if request.livemode:
            messages.error(request, "Test clocks exist only in test mode.")
            return redirect("dashboard:test_clocks")
        form = TestClockForm(request.POST)
        if form.is_valid():
            try:
                clock = create_test_clock(request.account, **form.cleaned_data)
            except ValidationError as error:
                _form_errors_from(form, error, {})
            else:
                messages.success(
                    request, f"Test clock created, frozen at {local(clock.frozen_time)}."
                )
                return redirect("dashboard:test_clock_detail", clock.pk)
        self.create_form = form
        response = self.get(request)
        response.status_code = 400
        return response


def _clock_rows(request, clock) -> list[dict]:
    """One row per subscription of the clock's customers (customers without one get a row)."""
    customers = (
        Customer.objects.filter(account=request.account, livemode=False, test_clock=clock)
        .select_related("invoice_settings_default_payment_method")
        .prefetch_related(
            Prefetch(
                "subscriptions",
                queryset=Subscription.objects.select_related("latest_invoice")
                .prefetch_related("items__price__product")
                .order_by("created", "pk"),
            )
        )
        .order_by("created", "pk")
    )
    rows = []
    for customer in customers[:100]:
        subscriptions = list(customer.subscriptions.all()) or [None]
        for index, subscription in enumerate(subscriptions):
            rows.append(
                {
                    "customer": customer,
                    "first": index == 0,
                    "span": len(subscriptions),
                    "card": customer.invoice_settings_default_payment_method,
                    "subscription": subscription,
                    "invoice": subscription.latest_invoice if subscription else None,
                }
            )
    return rows


def render_clock(request, clock, *, status=200, advance_form=None, customer_form=None):
    """The clock page, with any bound (invalid) form passed in."""
    customer_ids = Customer.objects.filter(test_clock=clock).values("pk")
    events = (
        Event.objects.filter(account=request.account, livemode=False)
        .filter(Q(customer_id__in=customer_ids) | Q(object_id=clock.pk))
        .order_by("-created", "-pk")[:EVENT_LIMIT]
    )
    can_manage = request.membership.can_manage_billing
    context = {
        "clock": clock,
        "rows": _clock_rows(request, clock),
        "events": events,
        "invoice_count": Invoice.objects.filter(test_clock=clock).count(),
        "can_manage": can_manage,
        "steps": [
            {"key": key, "label": label, "to": to(clock.frozen_time)}
            for key, (label, to) in STEPS.items()
        ],
        "advance_form": advance_form
        or AdvanceClockForm(
            initial={
                "to": timezone.localtime(clock.frozen_time + timedelta(days=1)).strftime(
                    "%Y-%m-%dT%H:%M"
                )
            }
        ),
        "customer_form": customer_form
        or ClockCustomerForm(prices=recurring_prices(request), prefix="customer"),
        "has_prices": recurring_prices(request).exists(),
    }
    return render(request, "dashboard/test_clocks/detail.html", context, status=status)


class TestClockDetailView(DetailView):
    """A test clock: its time and status, its customers, subscriptions, invoices and events."""

    __test__ = False

    model = TestClock

    def get(self, request, pk):
        clock = get_scoped_or_404(request, TestClock, pk=pk)
        if request.htmx and request.GET.get("poll"):
            return self.poll(request, clock)
        return render_clock(request, clock)

    def poll(self, request, clock):
        """htmx asks every second while the clock advances; once it is ready, reload the page."""
        if clock.status == TestClockStatus.ADVANCING:
            return render(request, "dashboard/test_clocks/_status.html", {"clock": clock})
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response


class ClockActionView(MemberRequiredMixin, View):
    """A POST that changes a test clock of the account, for members who manage billing."""

    permission = "can_manage_billing"
    http_method_names = ["post"]

    def clock(self, pk):
        return get_scoped_or_404(self.request, TestClock, pk=pk)


class TestClockAdvanceView(ClockActionView):
    """Advance by one of the quick steps (`step=day|week|month`) or to a chosen time (`to`)."""

    __test__ = False

    def post(self, request, pk):
        clock = self.clock(pk)
        step = request.POST.get("step")
        form = AdvanceClockForm(request.POST if not step else None)
        if step:
            if step not in STEPS:
                messages.error(request, f"Unknown step {step!r}.")
                return redirect("dashboard:test_clock_detail", clock.pk)
            to = STEPS[step][1](clock.frozen_time)
        elif form.is_valid():
            to = form.cleaned_data["to"]
        else:
            return render_clock(request, clock, status=400, advance_form=form)
        try:
            advance_test_clock(clock, to=to)
        except ValidationError as error:
            if step:
                for line in error_messages(error):
                    messages.error(request, line)
                return redirect("dashboard:test_clock_detail", clock.pk)
            _form_errors_from(form, error, {"frozen_time": "to"})
            return render_clock(request, clock, status=400, advance_form=form)
        messages.success(request, f"Advancing the clock to {local(to)}.")
        return redirect("dashboard:test_clock_detail", clock.pk)


class TestClockCustomerView(ClockActionView):
    """Add a customer with a test card, and optionally a subscription, to the clock."""

    __test__ = False

    def post(self, request, pk):
        clock = self.clock(pk)
        form = ClockCustomerForm(request.POST, prices=recurring_prices(request), prefix="customer")
        if form.is_valid():
            data = form.cleaned_data
            try:
                customer, subscription = add_clock_customer(
                    clock,
                    email=data["email"],
                    name=data["name"],
                    card=data["card"],
                    price=data["price"],
                    trial_days=data["trial_days"],
                    application=request.account.platform if is_acting(request.membership) else None,
                )
            except ValidationError as error:
                _form_errors_from(
                    form,
                    error,
                    {
                        "card[number]": "card",
                        "items[0][price]": "price",
                        "trial_period_days": "trial_days",
                    },
                )
            else:
                text = f"Customer {customer.email} added"
                if subscription is not None:
                    text += f"; its subscription is {subscription.get_status_display().lower()}"
                messages.success(request, text + ".")
                return redirect("dashboard:test_clock_detail", clock.pk)
        return render_clock(request, clock, status=400, customer_form=form)


class TestClockDeleteView(MemberRequiredMixin, View):
    """Confirm, then delete the clock with its customers and everything they own."""

    __test__ = False

    permission = "can_manage_billing"

    def get(self, request, pk):
        clock = get_scoped_or_404(request, TestClock, pk=pk)
        return render(
            request,
            "dashboard/confirm.html",
            {
                "object": clock,
                "noun": "test clock",
                "action": {
                    "question": f"Delete the test clock “{clock.name or clock.pk}”?",
                    "confirm": "Delete test clock",
                    "danger": True,
                },
                "explanation": (
                    f"Its {clock.customers.count()} customer(s) and everything they own — "
                    "subscriptions, invoices, payments — are deleted with it. "
                    "This cannot be undone."
                ),
                "detail_url": reverse("dashboard:test_clock_detail", args=[clock.pk]),
            },
        )

    def post(self, request, pk):
        clock = get_scoped_or_404(request, TestClock, pk=pk)
        name = clock.name or clock.pk
        delete_test_clock(clock)
        messages.success(request, f"Test clock “{name}” deleted.")
        return redirect("dashboard:test_clocks")
