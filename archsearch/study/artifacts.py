"""Where a study's artifacts (its trained weights) live: a folder or an S3 bucket, recorded on the study.

A SQLite study keeps them in a folder beside its file (``studies/<name>.db`` ->
``studies/<name>.artifacts/``), recorded relative to the file so the two move together.
A study on a server database (PostgreSQL) is run by workers on several machines, so its
location is recorded as given (or, by default, as the absolute folder
``studies/<name>.artifacts`` under the first worker's working directory): later
workers, exports and other machines read it from the study (user attribute
``archsearch:artifacts``). A location given again must be the recorded one: weights
split over two stores would export from neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from archsearch.errors import ArchsearchError
from archsearch.output_files import safe_filename

if TYPE_CHECKING:
    import optuna
    from optuna.artifacts._protocol import ArtifactStore

ARTIFACTS_ATTR = "archsearch:artifacts"
"""Study user attribute: where the study's artifacts live (a folder, or ``s3://bucket/prefix``)."""

S3_SCHEME = "s3://"


class ArtifactLocationError(ArchsearchError):
    """An artifact location that cannot be used, or that differs from the one the study recorded."""


def sqlite_folder(url: str) -> Path | None:
    """The folder of a SQLite study file (absolute), or ``None`` for server or in-memory storage."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).resolve().parent


def default_location(url: str, study_name: str) -> str:
    """Where a study keeps its artifacts when no location is given, as recorded on the study.

    SQLite: ``<file stem>.artifacts``, relative to the file's folder. Server storage: the
    absolute folder ``studies/<name>.artifacts`` under the current directory.
    """
    if sqlite_folder(url) is not None:
        return f"{Path(make_url(url).database or study_name).stem}.artifacts"
    return str((Path.cwd() / "studies" / f"{safe_filename(study_name)}.artifacts").resolve())


@dataclass(frozen=True)
class ArtifactLocation:
    """A parsed location: a folder, or an S3 bucket and key prefix."""

    recorded: str
    """The text recorded on the study (a relative folder is relative to the SQLite file's folder)."""
    folder: Path | None = None
    bucket: str | None = None
    prefix: str = ""

    @classmethod
    def parse(cls, text: str, base: Path | None = None) -> ArtifactLocation:
        """``s3://bucket/prefix`` or a folder (a relative one under ``base``, else the current directory)."""
        text = text.strip()
        if text.startswith(S3_SCHEME):
            bucket, _, prefix = text.removeprefix(S3_SCHEME).partition("/")
            if not bucket:
                raise ArtifactLocationError(f"artifact location {text!r}: give s3://BUCKET/PREFIX")
            prefix = prefix.strip("/")
            return cls(f"{S3_SCHEME}{bucket}/{prefix}".rstrip("/"), bucket=bucket, prefix=prefix)
        if "://" in text:
            raise ArtifactLocationError(f"artifact location {text!r}: give a folder or s3://BUCKET/PREFIX")
        if not text:
            raise ArtifactLocationError("artifact location is empty: give a folder or s3://BUCKET/PREFIX")
        path = Path(text).expanduser()
        folder = (path if path.is_absolute() else (base or Path.cwd()) / path).resolve()
        return cls(text if not path.is_absolute() and base is not None else str(folder), folder=folder)

    def same_place(self, other: ArtifactLocation) -> bool:
        return (self.folder, self.bucket, self.prefix) == (other.folder, other.bucket, other.prefix)

    @property
    def shown(self) -> str:
        """The location as people read it: an absolute folder or the S3 URL."""
        return str(self.folder) if self.folder is not None else self.recorded

    def open(self, for_writing: bool = False) -> ArtifactStore:
        """Optuna's artifact store at this location (the folder is created only to write)."""
        if self.folder is not None:
            from optuna.artifacts import FileSystemArtifactStore

            if for_writing:
                try:
                    self.folder.mkdir(parents=True, exist_ok=True)
                except OSError as error:
                    raise ArtifactLocationError(f"cannot create the artifact folder {self.folder}: "
                                                f"{error.strerror}") from None
            return FileSystemArtifactStore(self.folder)
        try:
            import boto3  # noqa: F401  (Optuna's S3 store needs it; not a dependency of archsearch)
        except ImportError:
            raise ArtifactLocationError(f"artifact location {self.recorded} is on S3, which needs boto3: "
                                        "pip install boto3") from None
        from optuna.artifacts import Boto3ArtifactStore

        store = Boto3ArtifactStore(self.bucket or "")
        return _Prefixed(store, self.prefix) if self.prefix else store


class _Prefixed:
    """An artifact store whose keys live under ``prefix/`` (Optuna's S3 store keys by artifact id alone)."""

    def __init__(self, store: Any, prefix: str) -> None:
        self._store, self._prefix = store, prefix

    def _key(self, artifact_id: str) -> str:
        return f"{self._prefix}/{artifact_id}"

    def open_reader(self, artifact_id: str) -> IO[bytes]:
        return self._store.open_reader(self._key(artifact_id))

    def write(self, artifact_id: str, content_body: IO[bytes]) -> None:
        self._store.write(self._key(artifact_id), content_body)

    def remove(self, artifact_id: str) -> None:
        self._store.remove(self._key(artifact_id))


def study_location(study: optuna.Study, url: str, given: str | None = None) -> ArtifactLocation:
    """The study's artifact location: the recorded one, else ``given``, else the default.

    ``given`` must match a recorded location (else ``ArtifactLocationError``, one line).
    Reads only: a runner records the location it uses with ``record_location``.
    """
    base = sqlite_folder(url)
    asked = ArtifactLocation.parse(given, None) if given else None  # a location typed now is relative to here
    recorded = study.user_attrs.get(ARTIFACTS_ATTR)
    if recorded:
        location = ArtifactLocation.parse(str(recorded), base)
        if asked is not None and not asked.same_place(location):
            raise ArtifactLocationError(
                f"study {study.study_name!r} keeps its trained weights in {location.shown}, not {asked.shown}: "
                f"drop --artifacts (or give that location) to go on with it")
        return location
    return asked or ArtifactLocation.parse(default_location(url, study.study_name), base)


def record_location(study: optuna.Study, location: ArtifactLocation) -> None:
    """Record where the study keeps its artifacts, unless it already did (the first run decides)."""
    if not study.user_attrs.get(ARTIFACTS_ATTR):
        study.set_user_attr(ARTIFACTS_ATTR, location.recorded)


__all__ = ["ARTIFACTS_ATTR", "ArtifactLocation", "ArtifactLocationError", "default_location", "record_location",
           "sqlite_folder", "study_location"]
