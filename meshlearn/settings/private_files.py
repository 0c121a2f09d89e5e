"""Files under var/ (the SQLite database and its -wal and -shm, sandbox logs, Redis's password) are this
account's alone: on a shared machine they hold sessions and password hashes that other local users must not read.

SQLite makes its -wal and -shm files with the umask of whichever process opens the database first, so the
umask is set in every process that loads these settings (web, workers, beat, manage.py); site_prepare also
fixes the modes of files an older version left readable.
"""

import os
import stat
from pathlib import Path

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def process_files_private() -> None:
    """What this process creates from now on (the database's -wal and -shm included) is this account's only."""
    os.umask(0o077)


def var_dir_private(var_dir: Path) -> None:
    """Create var/ for this account only, or narrow an existing one."""
    var_dir.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    if not var_dir.stat().st_mode & stat.S_ISVTX:  # never narrow a shared folder such as /tmp
        var_dir.chmod(DIRECTORY_MODE)


def sqlite_files_private(database: Path) -> list[Path]:
    """Make the SQLite file and its companions 0600; returns those that exist. Only the files: the folder of a
    database named by DATABASE_URL may be shared (/tmp), so it is left as it is."""
    present = [Path(f"{database}{suffix}") for suffix in SQLITE_SUFFIXES if Path(f"{database}{suffix}").exists()]
    for path in present:
        path.chmod(FILE_MODE)
    return present
