"""A client of a running prediction server's admin API, over plain HTTP.

``headwater policy`` and the canary controller (:func:`headwater.evaluation.canary_watch.
apply_over_http`) both change a live server through it. An answer other than 2xx is a
:class:`~headwater.errors.ValidationError` on the field ``server`` carrying the status
and the server's error body; a server that cannot be reached is a
:class:`~headwater.errors.ConfigError` naming the URL.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

import msgspec

from headwater.errors import ConfigError, ValidationError
from headwater.routing import PolicySpec

__all__ = ["AdminClient"]


class AdminClient:
    """The server at ``url``; ``token`` is the bearer token of its admin endpoints."""

    def __init__(self, url: str, token: str | None = None, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None
             ) -> dict[str, Any]:
        """The JSON answer of ``method path`` with ``body`` as JSON."""
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        url = f"{self.url}{path}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer: dict[str, Any] = json.loads(response.read() or b"{}")
                return answer
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise ValidationError("server", f"{exc.code}: {detail}") from None
        except OSError as exc:
            raise ConfigError(f"cannot reach the server at {url}: {exc}") from None

    def models(self) -> dict[str, Any]:
        """``GET /models``: the served model, its aliases, versions and policy."""
        return self.call("GET", "/models")

    def set_policy(self, policy: PolicySpec | Mapping[str, Any], *, reason: str,
                   actor: str) -> dict[str, Any]:
        """``PUT /admin/policy``: route with ``policy`` from the server's next request."""
        spec = msgspec.to_builtins(policy) if isinstance(policy, msgspec.Struct) else policy
        return self.call("PUT", "/admin/policy",
                         {"policy": spec, "reason": reason, "actor": actor})
