"""Cloudflare's API for ``fix --mode profile`` (I/O edge): the official ``cloudflare`` SDK.

The SDK is an optional extra (``pip install 'meshpath[profile]'``) imported only here, only
when a profile is read or written. Endpoints (the SDK's own paths, v4+):

    client.zero_trust.devices.policies.default.excludes.get/update(account_id=...)
        GET/PUT /accounts/{account_id}/devices/policy/exclude
    client.zero_trust.devices.policies.custom.excludes.get/update(policy_id, account_id=...)
        GET/PUT /accounts/{account_id}/devices/policy/{policy_id}/exclude
    ... and the same for ``includes`` (``/include``)

The token comes from ``CLOUDFLARE_API_TOKEN`` and lives only in the SDK client: it is
never printed, journaled or logged, and any message that would carry it is scrubbed.
With ``--netns`` the requests leave from inside that namespace (the calling thread enters
it, so the SDK's sockets are created there), like every other command of meshpath.
Every failure is one :class:`ProfileApiError` line (exit 3); nothing is retried, so a
failed write changes nothing that the next step's rollback would not undo.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from meshpath.collect.netns import inside_netns
from meshpath.errors import MissingToolError
from meshpath.errors import ProfileApiError as ProfileApiError  # re-exported: its old home
from meshpath.fix.model import ProfileEntry
from meshpath.fix.profile import ProfileList

TOKEN_ENV: Final = "CLOUDFLARE_API_TOKEN"
DEFAULT_API: Final = "https://api.cloudflare.com/client/v4"
DEFAULT_TIMEOUT: Final = 15.0


@dataclass
class ProfileApi:
    """Reads and writes one account's device-profile Split Tunnels lists."""

    token: str = field(repr=False)
    api_base: str | None = None
    netns: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    # -- reading and writing ------------------------------------------------------------
    def read(self, account_id: str, policy_id: str | None) -> ProfileList:
        """The profile's list and its mode: Include when only the include list has
        entries (a profile holds one of the two)."""
        excludes = self._call("GET", account_id, policy_id, "exclude", None)
        includes = self._call("GET", account_id, policy_id, "include", None)
        if includes and not excludes:
            return ProfileList("include", includes)
        return ProfileList("exclude", excludes)

    def write(
        self,
        account_id: str,
        policy_id: str | None,
        mode: str,
        entries: tuple[ProfileEntry, ...],
    ) -> tuple[ProfileEntry, ...]:
        """PUT the whole list; returns what the API answered it now holds."""
        return self._call("PUT", account_id, policy_id, mode, entries)

    # -- the SDK ----------------------------------------------------------------------
    def _call(
        self,
        verb: str,
        account_id: str,
        policy_id: str | None,
        mode: str,
        entries: tuple[ProfileEntry, ...] | None,
    ) -> tuple[ProfileEntry, ...]:
        sdk = _sdk()
        suffix = f"/{policy_id}" if policy_id else ""
        where = f"{verb} /accounts/{account_id}/devices/policy{suffix}/{mode}"
        with self._errors(sdk, where), inside_netns(self.netns):
            client = sdk.Cloudflare(
                api_token=self.token,
                base_url=self.api_base or DEFAULT_API,
                timeout=self.timeout,
                max_retries=0,
            )
            try:
                resource = _resource(client, policy_id, mode)
                kwargs: dict[str, Any] = {"account_id": account_id}
                if policy_id:
                    kwargs["policy_id"] = policy_id
                if entries is None:
                    page = resource.get(**kwargs)
                else:
                    page = resource.update(body=[_param(e) for e in entries], **kwargs)
                return tuple(_entry(item) for item in page)
            finally:
                client.close()

    @contextmanager
    def _errors(self, sdk: Any, where: str) -> Iterator[None]:
        """Every SDK or transport failure as one line, the token scrubbed from it."""
        base = self.api_base or DEFAULT_API
        try:
            yield
        except sdk.APITimeoutError as exc:
            raise self._fail(f"{where}: no answer within {self.timeout:g}s from {base}") from exc
        except sdk.APIConnectionError as exc:
            raise self._fail(f"{where}: cannot reach {base}: {_cause(exc)}") from exc
        except sdk.APIStatusError as exc:
            raise self._fail(f"{where}: HTTP {exc.status_code}{_api_errors(exc)}") from exc
        except (sdk.APIResponseValidationError, ValueError, TypeError, KeyError) as exc:
            raise self._fail(f"{where}: the answer is not Cloudflare's API format ({exc})") from exc

    def _fail(self, message: str) -> ProfileApiError:
        text = " ".join(message.split())  # one line
        if self.token:
            text = text.replace(self.token, "***")
        return ProfileApiError(f"Cloudflare API {text}")


def _sdk() -> Any:
    try:
        import cloudflare
    except ImportError as exc:
        raise MissingToolError(
            "cloudflare (Python SDK)", "pip install 'meshpath[profile]' for --mode profile"
        ) from exc
    return cloudflare


def _resource(client: Any, policy_id: str | None, mode: str) -> Any:
    policies = client.zero_trust.devices.policies
    group = policies.custom if policy_id else policies.default
    return group.excludes if mode == "exclude" else group.includes


def _param(entry: ProfileEntry) -> dict[str, str]:
    out = {"address": entry.address} if entry.address else {"host": entry.host or ""}
    if entry.description:
        out["description"] = entry.description
    return out


def _entry(item: Any) -> ProfileEntry:
    address = getattr(item, "address", None)
    host = getattr(item, "host", None)
    if not isinstance(address, str) and not isinstance(host, str):
        raise ValueError(f"a Split Tunnels entry without address or host: {item!r}")
    return ProfileEntry(address=address, host=host, description=getattr(item, "description", None))


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ or exc
    return str(inner) or type(inner).__name__


def _api_errors(exc: Any) -> str:
    errors = getattr(exc, "errors", None) or []
    messages = [str(getattr(e, "message", "")) for e in errors if getattr(e, "message", None)]
    return f": {'; '.join(messages)}" if messages else ""


def token_from_env(env: dict[str, str] | None = None) -> str:
    token = (env if env is not None else os.environ).get(TOKEN_ENV, "").strip()
    if not token:
        raise ProfileApiError(
            f"{TOKEN_ENV} is not set: create an API token with the account permission "
            "'Zero Trust: Edit' and export it (meshpath never prints or stores it)"
        )
    return token


ApiFactory = Callable[[str | None, str | None], ProfileApi]


def sdk_api(
    api_base: str | None, netns: str | None, timeout: float = DEFAULT_TIMEOUT
) -> ProfileApi:
    """A ProfileApi with the token from the environment (checked first, SDK next)."""
    token = token_from_env()
    _sdk()
    return ProfileApi(token=token, api_base=api_base, netns=netns, timeout=timeout)
