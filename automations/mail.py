"""The two emails automations send, through the notifications app (issue #6).

A thin adapter so the actions depend on two functions with fixed signatures, whatever the
notifications app's internals become. The survey link of the cancellation confirmation goes
to the notifications function when it takes one (`survey_url`); until it does, the link is
left out and the step's note says so.
"""

import functools
import inspect

from notifications.services import emails


@functools.cache
def _confirmation_takes_survey() -> bool:
    return "survey_url" in inspect.signature(emails.send_cancellation_confirmation).parameters


def send_team_memo(*, account, livemode, to, subject, body, dedup_key, customer=None):
    """A memo about the trigger to a team member (or an internal address)."""
    return emails.send_team_memo(
        account=account,
        livemode=livemode,
        to=to,
        subject=subject,
        body=body,
        dedup_key=dedup_key,
        customer=customer,
    )


def send_cancellation_confirmation(subscription, *, dedup_key, survey_url=""):
    """Confirm the cancellation to the customer; returns (log entry or None, survey included)."""
    if survey_url and _confirmation_takes_survey():
        entry = emails.send_cancellation_confirmation(
            subscription, dedup_key=dedup_key, survey_url=survey_url
        )
        return entry, True
    entry = emails.send_cancellation_confirmation(subscription, dedup_key=dedup_key)
    return entry, not survey_url
