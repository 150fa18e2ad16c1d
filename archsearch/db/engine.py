"""Opening a database for archsearch's tables: engine, schema, and one unit of work at a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session, sessionmaker

from archsearch.db.models import Base
from archsearch.errors import ArchsearchError
from archsearch.urls import scrubbed


class StoreError(ArchsearchError):
    """The database cannot be opened or written."""


def default_cache_url() -> str:
    """``sqlite:///<user cache dir>/archsearch/latency.db`` (``ARCHSEARCH_CACHE_DIR`` overrides the dir)."""
    return f"sqlite:///{cache_dir() / 'latency.db'}"


def cache_dir() -> Path:
    """archsearch's cache directory (latency database, converted models)."""
    import os

    from platformdirs import user_cache_dir

    path = Path(os.environ.get("ARCHSEARCH_CACHE_DIR") or user_cache_dir("archsearch"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 30000")  # wait for another writer rather than fail
    cursor.close()


class Store:
    """archsearch's tables in one database (its own, or a study's beside Optuna's).

    ``Store.at(url)`` shares one engine per URL within a process; creating an engine and
    checking the schema on every measurement cost more than the query.
    """

    _open: dict[str, Store] = {}

    @classmethod
    def at(cls, url: str | None = None) -> Store:
        """The process's store for ``url`` (default: the user cache), opened on first use."""
        key = url or default_cache_url()
        store = cls._open.get(key)
        if store is None:
            store = cls._open[key] = cls(key)
        return store

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_cache_url()
        try:
            # pre-ping: a worker outlives a database restart instead of failing on a dead connection
            self.engine: Engine = create_engine(self.url, pool_pre_ping=True)
        except (ArgumentError, NoSuchModuleError, ValueError) as error:
            raise StoreError(scrubbed(f"cannot use storage URL {self.url!r}: {error}", self.url)) from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            self._create_tables()
        except (OperationalError, SQLAlchemyError) as error:
            cause = getattr(error, "orig", None) or error
            reason = str(cause).strip().splitlines()[0]
            raise StoreError(scrubbed(f"cannot open storage {self.url!r}: {reason}", self.url)) from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def _create_tables(self) -> None:
        """Create missing tables. Workers starting together on one server race to create the
        same table; the loser's error means the table now exists, so it checks again."""
        for attempt in range(3):
            try:
                Base.metadata.create_all(self.engine)
                return
            except (IntegrityError, ProgrammingError):
                if attempt == 2:
                    raise

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed at the end, rolled back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
