"""Loading the pseudonymisation secret from the environment or a file, never from code, config or logs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

SECRET_ENV = "BRAINFM_DEID_SECRET"
SECRET_FILE_ENV = "BRAINFM_DEID_SECRET_FILE"


def load_secret(
    env_var: str = SECRET_ENV, file_env_var: str = SECRET_FILE_ENV, environ: Mapping[str, str] | None = None
) -> bytes:
    """Return the secret from ``$env_var``, else from the file named by ``$file_env_var``."""
    environ = os.environ if environ is None else environ
    if environ.get(env_var):
        return environ[env_var].encode()
    path = environ.get(file_env_var)
    if path:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{file_env_var} names {p}, which is not a file.")
        secret = p.read_bytes().strip()
        if secret:
            return secret
    raise RuntimeError(
        f"No pseudonymisation secret: set {env_var} or point {file_env_var} at a file holding a long "
        "random value, e.g. `openssl rand -hex 32 > .secrets/deid.key` (`make demo` creates one)."
    )
