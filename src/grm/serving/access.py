"""Who may call a ``grm serve``: the bind rule (a non-loopback bind needs a key or an explicit trusted network), the
key (``--api-key``, ``--api-key-file``, ``GRM_API_KEY``) and the ``Host`` names a key-less loopback server answers
(DNS-rebinding protection). The guard middleware enforces them per request."""

from __future__ import annotations

import os

from grm.serving.serve_config import ServeConfigError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_bind(host: str, api_key: str | None, trusted_networks: tuple[str, ...] = ()) -> None:
    """Refuse a non-local bind without an API key or an explicit ``--trust-network``.

    Raises:
        ServeConfigError: (a ValueError) ``host`` is not loopback and neither a key nor a trusted network is set; a bad CIDR.
    """
    import ipaddress

    for net in trusted_networks:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError as exc:
            raise ServeConfigError(
                f"{net!r}: not a CIDR such as 10.0.0.0/8 ({exc})", field="--trust-network"
            ) from None
    if host not in LOCAL_HOSTS and not api_key and not trusted_networks:
        raise ServeConfigError(
            f"Refusing to bind {host!r} without an API key: anyone on the network could use the model. Set "
            "GRM_API_KEY or --api-key-file FILE (clients that cannot send headers put it in the URL: "
            "http://HOST:PORT/key/KEY/get_reward), or --trust-network CIDR to serve a private network without one, "
            "or bind 127.0.0.1 behind your own proxy.",
            field="--host",
        )


def loopback_hosts(host: str, api_key: str | None, trusted_networks: tuple[str, ...], extra: tuple[str, ...]) -> tuple:
    """The ``Host`` names a key-less loopback server answers (DNS-rebinding protection); () = no check."""
    if api_key or trusted_networks or host not in LOCAL_HOSTS:
        return tuple(extra)
    return ("localhost", "127.0.0.1", "[::1]", *extra)


def api_key_from_env(value: str | None, key_file: str | None = None) -> str | None:
    """The key: ``--api-key`` (visible to local users in ``/proc``; prefer the others), ``--api-key-file`` (its
    first line) or ``GRM_API_KEY``.

    Raises:
        ServeConfigError: (a ValueError) the key file cannot be read or is empty.
    """
    if key_file:
        try:
            lines = open(key_file, encoding="utf-8").read().splitlines()  # noqa: SIM115
        except OSError as exc:
            raise ServeConfigError(f"{key_file}: {exc.strerror}", field="--api-key-file") from None
        key = lines[0].strip() if lines else ""
        if not key:
            raise ServeConfigError(
                f"{key_file}: the file is empty; put the key on its first line", field="--api-key-file"
            )
        return key
    return value or os.environ.get("GRM_API_KEY") or None
