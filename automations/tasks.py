"""django-q2 tasks of the automations app. Thin: they take ids (arguments travel as text)."""


def run_ready_steps(run_id: str) -> int:
    """Run a new run's steps that are already due, in order."""
    from automations import engine

    return engine.run_ready_steps(str(run_id))
