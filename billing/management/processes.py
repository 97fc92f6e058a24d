"""Helpers the benchmark commands share: the database another process should open, and the
CPU time of processes (Linux /proc), theirs and PostgreSQL's."""

import os
import signal
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection


def database_url() -> str:
    """The URL of the database this process is connected to, for the server it starts (under
    pytest that is the test database, not the one DATABASE_URL names)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(db["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            raise CommandError("The benchmark needs a database file that another process can open.")
        return f"sqlite:///{Path(name).resolve()}"
    if connection.vendor == "postgresql":
        user = quote(db.get("USER") or "", safe="")
        password = quote(db.get("PASSWORD") or "", safe="")
        credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{credentials}{db.get('HOST') or ''}{port}/{quote(db['NAME'], safe='')}"
    raise CommandError(f"The benchmark does not know how to share a {connection.vendor} database.")


def stat_fields(pid) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces): state, ppid, …"""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rpartition(")")[2].split()


def parent_pid(pid) -> int | None:
    try:
        return int(stat_fields(pid)[1])
    except (OSError, IndexError, ValueError):
        return None  # gone meanwhile, or not a process directory


def cpu_seconds(pid) -> float:
    fields = stat_fields(pid)
    # utime and stime are fields 14 and 15 of the stat line, 12 and 13 after the name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_cpu_seconds() -> float | None:
    """CPU time so far of the PostgreSQL processes on this machine (its backends do the
    database's share of every request), or None for SQLite or without /proc.

    Backends that ended count too: the server's first process (the postmaster) reaps them, and
    the kernel adds their time to its children's (a helper's connections come and go)."""
    if connection.vendor != "postgresql":
        return None
    total = 0.0
    try:
        entries = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return None
    found = {}
    for entry in entries:
        try:
            with open(f"/proc/{entry}/comm") as comm:
                if comm.read().strip() != "postgres":
                    continue
            found[entry] = stat_fields(entry)
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    tick = os.sysconf("SC_CLK_TCK")
    for fields in found.values():
        # utime, stime, cutime, cstime: fields 14 to 17 of the stat line, 12 to 15 after the
        # name; the children's part only for the postmaster (its parent is not a postgres).
        total += (int(fields[11]) + int(fields[12])) / tick
        if fields[1] not in found:
            total += (int(fields[13]) + int(fields[14])) / tick
    return total


def descendants(pid: int) -> list[int]:
    """The processes `pid` started, and theirs, that are still running."""
    children: dict[int, list[int]] = {}
    try:
        entries = [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return []
    for entry in entries:
        parent = parent_pid(entry)
        if parent is not None:
            children.setdefault(parent, []).append(entry)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time so far of `pid` and its descendants."""
    try:
        return sum(cpu_seconds(each) for each in (pid, *descendants(pid)))
    except OSError:
        return None


class Started:
    """A process the benchmark starts in this project's directory (a server, a cluster): its
    own process group, its output kept for error messages, its CPU time read from /proc."""

    def __init__(self, args: list[str], env: dict):
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop)
        self.process = subprocess.Popen(
            args,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def cpu_seconds(self) -> float | None:
        """User + system CPU time so far of the process and its descendants."""
        return tree_cpu_seconds(self.process.pid)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the process group, SIGKILL it after `timeout` seconds."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
