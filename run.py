#!/usr/bin/env python3
"""Relance's two commands, needing nothing but Python 3.11 and pip.

    python3.11 run.py          install into .venv/, migrate, load the demo, start web + worker
    python3.11 run.py test     install into .venv/, run every test (pytest arguments pass through)

Running either again reuses the virtual environment, the database and the demo data.
"""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
LOCK = ROOT / "requirements" / "dev.txt"
STAMP = VENV / ".relance-lock-sha256"


def say(message: str) -> None:
    print(f"\033[1;34m==>\033[0m {message}", flush=True)


def check_python() -> None:
    if sys.version_info[:2] != (3, 11):
        sys.exit(
            f"Relance needs Python 3.11; this is {sys.version.split()[0]}. Run: python3.11 run.py"
        )


def ensure_venv() -> None:
    """Create .venv/ and install the locked dependencies, unless the lock has not changed."""
    if not PYTHON.exists():
        say("Creating the virtual environment in .venv/")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        return
    say("Installing the locked dependencies (requirements/dev.txt)")
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "-q", "--require-hashes", "-r", str(LOCK)], check=True)
    STAMP.write_text(digest)


def manage(*args: str, env=None) -> None:
    subprocess.run([str(PYTHON), "manage.py", *args], cwd=ROOT, check=True, env=env)


def public_url_env(environ, host: str, port: str) -> dict:
    """The environment for the processes `start` runs: unless RELANCE_PUBLIC_URL is set, the
    links in customer emails lead to this very server (its port included), not to the default
    http://localhost:8000."""
    env = dict(environ)
    if not env.get("RELANCE_PUBLIC_URL"):
        # A server listening on every interface is still reached from this machine by name.
        shown = "localhost" if host in ("0.0.0.0", "::", "") else host
        if ":" in shown:
            shown = f"[{shown}]"
        env["RELANCE_PUBLIC_URL"] = f"http://{shown}:{port}"
    return env


def start() -> int:
    """Prepare the database and demo data, then run the web server and a django-q2 worker."""
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    env = public_url_env(os.environ, host, port)
    say("Migrating the database")
    manage("migrate", "--no-input", "-v", "0", env=env)
    say("Loading the demo data")
    manage("load_demo", env=env)
    say("Scheduling recurring work")
    manage("setup_schedules", env=env)

    processes = {
        "web": subprocess.Popen(
            [str(PYTHON), "manage.py", "runserver", f"{host}:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
        ),
        "worker": subprocess.Popen([str(PYTHON), "manage.py", "qcluster"], cwd=ROOT, env=env),
    }
    time.sleep(1)
    say(f"Relance is running: http://{host}:{port}/  (admin: http://{host}:{port}/admin/)")
    say("Press Ctrl-C to stop the web server and the worker.")

    def stop(*_):
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    try:
        while True:
            for name, process in processes.items():
                if process.poll() is not None:
                    say(f"The {name} process stopped (exit code {process.returncode}); stopping.")
                    stop()
                    return process.returncode or 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        stop()
        return 0


def test(args: list[str]) -> int:
    """Run the whole suite (SQLite unless DATABASE_URL says otherwise)."""
    env = dict(os.environ)
    if shutil.which("chromium", path="/usr/bin") is None:
        say(
            "Chromium is not at /usr/bin/chromium: browser tests will be skipped "
            "(install Debian's chromium package to run them)."
        )
    return subprocess.run([str(PYTHON), "-m", "pytest", *args], cwd=ROOT, env=env).returncode


def main(argv: list[str]) -> int:
    check_python()
    command = argv[0] if argv else "start"
    ensure_venv()
    if command == "start":
        return start()
    if command == "test":
        return test(argv[1:])
    if command == "setup":
        return 0
    sys.exit(f"unknown command {command!r}: use `run.py`, `run.py test` or `run.py setup`")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
