"""django-q2 tasks of the notifications app. Thin: they take ids (arguments travel as text)."""

from notifications.services import sending


def deliver_email(log_id: str) -> int:
    """Send one logged email; re-raise its failure so django-q2 records the task as failed
    (the retry itself is a due job `_record_failure` scheduled)."""
    sent, errors = sending.deliver([str(log_id)])
    if errors:
        raise errors[0]
    return sent


def recover_stale_emails() -> int:
    """Sends interrupted by a dying worker: try each once more (every few minutes)."""
    return sending.recover_stale()


def purge_email_log() -> int:
    """Delete log entries older than 30 days (daily, SPEC R-MAIL-9)."""
    return sending.purge_old()
