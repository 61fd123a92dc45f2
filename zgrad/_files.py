"""Report files written atomically and last, and output folders checked before any work.

Every report writer of zgrad (``zgrad crosscheck``, ``python -m validation``, the ``to_html``
methods) goes through this module, so they share one behaviour:

- :func:`prepare_folder` is called before the work starts: it refuses a path that cannot hold
  the report (an existing file where a folder is expected, a place where nothing can be
  written, a report name taken by a folder) with an :class:`OutputPathError` naming the path and
  what is wrong, and removes the report files an earlier run left there, so an interrupted
  or failed run never leaves a file that claims success (a new folder is created only when
  the files are written);
- :func:`write_files` writes every file to a temporary name in the target folder and renames
  them into place, in the order given, only once all of them were written; on any failure
  (or an interruption) the temporary files are removed and no file is replaced.

Examples
--------
>>> import tempfile, pathlib
>>> from zgrad._files import prepare_folder, write_files
>>> folder = prepare_folder(pathlib.Path(tempfile.mkdtemp()) / "out", ["a.txt"])
>>> [p.name for p in write_files(folder, {"a.txt": "A"})]
['a.txt']
>>> sorted(p.name for p in folder.iterdir())
['a.txt']
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from zgrad.errors import ZgradError

__all__ = ["OutputPathError", "check_writable", "prepare_folder", "write_files", "write_text"]


class OutputPathError(ZgradError, ValueError):
    """An output path cannot hold the report: the message names the path and what is wrong."""


def _first_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(folder: Path) -> None:
    """Create and remove a file in ``folder`` (the one test that also holds for root and read-only mounts).

    Raises
    ------
    OutputPathError
        If nothing can be written there, naming the folder and the reason.
    """
    probe = folder / f".zgrad-probe-{secrets.token_hex(4)}"
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as exc:
        message = f"cannot write into the output folder {str(folder)!r}: {exc.strerror}."
        raise OutputPathError(message) from None
    probe.unlink()


def prepare_folder(path: str | os.PathLike, names: Iterable[str] = ()) -> Path:
    """Check that ``path`` can hold the report files ``names``, and remove stale ones.

    Parameters
    ----------
    path : str or path-like
        The output folder: an existing folder, or one that can be created.
    names : iterable of str
        The file names the report will have; an earlier run's files of these names are removed.

    Returns
    -------
    Path
        The folder: writable, or one that can be created in a writable folder.

    Raises
    ------
    OutputPathError
        If ``path`` is an existing file, lies below a file, or neither it nor the folder it
        would be created in can be written into, or one of ``names`` is taken by a folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from zgrad._files import prepare_folder
    >>> afile = pathlib.Path(tempfile.mkdtemp()) / "taken"
    >>> _ = afile.write_text("x")
    >>> prepare_folder(afile)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    zgrad._files.OutputPathError: the output folder '...taken' is an existing file; give a folder ...
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(
            f"the output folder {str(folder)!r} is an existing file; give a folder (existing or new)."
        )
    base = _first_existing(folder)
    if not base.is_dir():
        raise OutputPathError(f"cannot create the output folder {str(folder)!r}: {str(base)!r} is a file.")
    check_writable(base)  # the folder itself, or the existing folder it will be created in
    names = list(names)
    for name in names:
        if (folder / name).is_dir():
            raise OutputPathError(
                f"cannot write {str(folder / name)!r}: a folder of that name is in the way."
            )
    for name in names:  # the earlier run's report must not outlive a run that fails from here on
        (folder / name).unlink(missing_ok=True)
    return folder


def _write_temporary(folder: Path, name: str, content: str | bytes) -> Path:
    temporary = folder / f".{name}.{secrets.token_hex(4)}.tmp"
    data = content.encode("utf-8") if isinstance(content, str) else content
    fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # 0o666: the umask applies
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def write_files(folder: str | os.PathLike, contents: Mapping[str, str | bytes]) -> list[Path]:
    """Write ``contents`` (file name -> text or bytes) into ``folder`` atomically; return the paths.

    All files are first written to temporary names in ``folder``; they are renamed into place in
    the order of ``contents`` (put the file that says the run succeeded last) only when every one
    was written. On any failure, interruption included, the temporary files are removed and no
    existing file is touched.

    Examples
    --------
    >>> import tempfile
    >>> from zgrad._files import write_files
    >>> [p.name for p in write_files(tempfile.mkdtemp(), {"index.html": "<p>", "report.json": "{}"})]
    ['index.html', 'report.json']
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    try:
        for name, content in contents.items():
            written[name] = _write_temporary(folder, name, content)
        for name, temporary in list(written.items()):
            os.replace(temporary, folder / name)
            del written[name]
    finally:
        for temporary in written.values():  # only those not renamed: an error or an interruption
            temporary.unlink(missing_ok=True)
    return [folder / name for name in contents]


def write_text(path: str | os.PathLike, content: str | bytes) -> Path:
    """Write one file atomically (a temporary name in its folder, then a rename); return its path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from zgrad._files import write_text
    >>> path = write_text(pathlib.Path(tempfile.mkdtemp()) / "a.txt", "text")
    >>> path.read_text()
    'text'
    """
    path = Path(path)
    return write_files(path.parent, {path.name: content})[0]
