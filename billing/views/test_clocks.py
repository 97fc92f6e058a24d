"""Test clocks (read only here): list and detail with the customers on each clock."""

from django.db.models import Count

from billing.forms import ClockFilterForm
from billing.models import Customer, TestClock
from billing.views.base import DetailView, ListView


class TestClockListView(ListView):
    """Test clocks with how many customers each carries (test mode only)."""

    __test__ = False  # not a pytest test class, whatever its name

    model = TestClock
    filter_form_class = ClockFilterForm
    table_template = "dashboard/test_clocks/_table.html"
    title = "Test clocks"

    def decorate(self, queryset):
        return queryset.annotate(customer_count=Count("customers"))


class TestClockDetailView(DetailView):
    """A test clock and the customers on it."""

    __test__ = False

    model = TestClock
    template_name = "dashboard/test_clocks/detail.html"

    def get_context(self, clock):
        customers = self.scope(Customer).filter(test_clock=clock).order_by("-created", "-pk")
        return {"clock": clock, "customers": customers[:100]}
