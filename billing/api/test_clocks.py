"""/v1/test_helpers/test_clocks: create, retrieve, list, delete, advance (SPEC R-CLOCK-*).

Test clocks exist in test mode only: a live key is refused. Advancing is asynchronous, as in
Stripe: the answer says `advancing`, and a worker runs what falls due, then the clock is `ready`.
"""

from billing import services
from billing.api import lists
from billing.api.base import ApiView, deleted, get_or_404, scoped
from billing.api.errors import ApiError
from billing.api.params import Schema, String, Timestamp
from billing.models import TestClock


def _test_mode_only(ctx) -> None:
    if ctx.livemode:
        raise ApiError(
            "Test clocks can only be used in test mode: use a test key (sk_test_…).",
            code="livemode_mismatch",
        )


def _clock_or_404(ctx, clock_id: str) -> TestClock:
    _test_mode_only(ctx)
    return get_or_404(ctx, TestClock, clock_id, "test_clock")


class TestClocksView(ApiView):
    """Create and list test clocks."""

    post_params = Schema({"frozen_time": Timestamp(required=True), "name": String(max_length=300)})
    get_params = Schema(lists.LIST_FIELDS)

    def post(self, ctx, params):
        _test_mode_only(ctx)
        return services.create_test_clock(
            ctx.account, frozen_time=params["frozen_time"], name=params.get("name", "")
        )

    def get(self, ctx, params):
        _test_mode_only(ctx)
        return lists.page(
            scoped(ctx, TestClock),
            params,
            url="/v1/test_helpers/test_clocks",
            object_label="test_clock",
        )


class TestClockView(ApiView):
    """Retrieve and delete one test clock (deleting removes its customers and their objects)."""

    get_params = Schema()
    delete_params = Schema()
    param_aliases = {"test_clock": None}

    def get(self, ctx, params, clock_id):
        return _clock_or_404(ctx, clock_id)

    def delete(self, ctx, params, clock_id):
        clock = _clock_or_404(ctx, clock_id)
        services.delete_test_clock(clock)
        return deleted(clock_id, "test_helpers.test_clock")


class TestClockAdvanceView(ApiView):
    """Start moving the clock to `frozen_time`; the clock answers `advancing` (SPEC R-CLOCK-2)."""

    post_params = Schema({"frozen_time": Timestamp(required=True)})
    param_aliases = {"test_clock": None}

    def post(self, ctx, params, clock_id):
        clock = _clock_or_404(ctx, clock_id)
        return services.advance_test_clock(clock, to=params["frozen_time"])
