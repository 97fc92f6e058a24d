"""Dashboard pages: thin views that scope every query to the member's account and mode."""
