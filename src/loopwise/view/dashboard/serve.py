"""``loopwise ui``: run the dashboard on uvicorn (extra ``loopwise[ui]``)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterable
from typing import TextIO

from loopwise.utils.text import printable
from loopwise.utils.validate import check_int
from loopwise.view.dashboard.app import create_app
from loopwise.view.dashboard.guard import LOCAL_HOSTS


def is_loopback(host: str) -> bool:
    """True for names and addresses that only this machine can reach."""
    return host in LOCAL_HOSTS or host.startswith("127.")


def bind_warning(host: str, token: str | None) -> str | None:
    """The warning for binding ``host``: None for a loopback address."""
    if is_loopback(host):
        return None
    return (f"loopwise ui: warning: listening on {printable(host)} makes your runs readable "
            f"from the network{'' if token else '; set --token'}")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def serve(root: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 8765,
          token: str | None = None, allow_hosts: Iterable[str] = (),
          out: TextIO | None = None) -> None:
    """Serve the dashboard of ``root`` on ``host:port`` until interrupted.

    Any ``host`` but a loopback one makes the runs readable from the network: a warning says
    so (use ``token``). The bound address is accepted as a Host header.
    """
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be an address such as 127.0.0.1, got {host!r}")
    port = check_int(port, what="port", minimum=0, maximum=65535, hint="0: any free port")
    stream = sys.stderr if out is None else out
    try:
        import uvicorn
    except ImportError as exc:
        raise ImportError("the dashboard needs starlette and uvicorn: "
                          "pip install 'loopwise[ui]'") from exc
    hosts = list(allow_hosts)
    if host not in ("0.0.0.0", "::"):
        hosts.append(host)
    app = create_app(root, token=token, allow_hosts=hosts, warm=True)
    warning = bind_warning(host, token)
    if warning is not None:
        print(warning, file=stream)
    if port == 0:
        port = free_port(host if host not in ("0.0.0.0", "::") else "127.0.0.1")
    if not os.path.isdir(root):
        print(f"loopwise ui: {printable(root)} does not exist yet; waiting for runs to appear "
              "there", file=stream, flush=True)
    shown = f"[{host}]" if ":" in host else host
    print(f"loopwise dashboard of {printable(root)} on http://{shown}:{port}/"
          f"{'?token=...' if token else ''} (Ctrl-C to stop)", file=stream, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
