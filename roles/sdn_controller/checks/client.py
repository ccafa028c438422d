"""A small client of the sliceable switch's REST API (Trema's; standard library only).

Writes answer 202 with no body (except creating a slice: {id, description}); they return None here.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class SdnApiError(Exception):
    """The REST API answered with an error status (or could not be reached: status 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status


class SdnClient:
    def __init__(self, base_url: str, timeout: float = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = json.loads(raw).get("error", raw.decode(errors="replace"))
            except ValueError:
                message = raw.decode(errors="replace")
            raise SdnApiError(exc.code, message) from None
        except (urllib.error.URLError, OSError) as exc:
            raise SdnApiError(0, f"cannot reach {self.base_url}: {exc}") from None
        return json.loads(raw) if raw.strip() else None

    # -- slices
    def slices(self) -> list[dict[str, Any]]:
        return self.request("GET", "/networks")

    def slice(self, slice_id: str) -> dict[str, Any]:
        return self.request("GET", f"/networks/{slice_id}")

    def create_slice(self, slice_id: str, description: str = "") -> dict[str, Any]:
        return self.request("POST", "/networks", {"id": slice_id, "description": description})

    def update_slice(self, slice_id: str, description: str) -> None:
        self.request("PUT", f"/networks/{slice_id}", {"description": description})

    def delete_slice(self, slice_id: str) -> None:
        self.request("DELETE", f"/networks/{slice_id}")

    # -- bindings
    def add_port(
        self, slice_id: str, datapath_id: str | int, port: int, vid: int | None = None, binding_id: str | None = None
    ) -> None:
        body: dict[str, Any] = {"datapath_id": datapath_id, "port": port}
        if vid is not None:
            body["vid"] = vid
        if binding_id:
            body["id"] = binding_id
        self.request("POST", f"/networks/{slice_id}/ports", body)

    def remove_port(self, slice_id: str, binding_id: str) -> None:
        self.request("DELETE", f"/networks/{slice_id}/ports/{binding_id}")

    def add_mac(self, slice_id: str, mac: str, binding_id: str | None = None) -> None:
        body = {"mac": mac} | ({"id": binding_id} if binding_id else {})
        self.request("POST", f"/networks/{slice_id}/attachments", body)

    def remove_mac(self, slice_id: str, binding_id: str) -> None:
        self.request("DELETE", f"/networks/{slice_id}/attachments/{binding_id}")

    def add_port_mac(self, slice_id: str, port_binding_id: str, mac: str, binding_id: str | None = None) -> None:
        body = {"mac": mac} | ({"id": binding_id} if binding_id else {})
        self.request("POST", f"/networks/{slice_id}/ports/{port_binding_id}/attachments", body)

    def remove_port_mac(self, slice_id: str, port_binding_id: str, binding_id: str) -> None:
        self.request("DELETE", f"/networks/{slice_id}/ports/{port_binding_id}/attachments/{binding_id}")

    # -- filters
    def filters(self) -> list[dict[str, Any]]:
        return self.request("GET", "/filters")

    def filter(self, filter_id: str) -> dict[str, Any]:
        return self.request("GET", f"/filters/{filter_id}")

    def add_filters(self, *filters: dict[str, Any]) -> None:
        self.request("POST", "/filters", list(filters))

    def remove_filter(self, filter_id: str) -> None:
        self.request("DELETE", f"/filters/{filter_id}")

    # -- options and tables
    def config(self) -> dict[str, Any]:
        return self.request("GET", "/config")

    def set_config(self, **options: bool) -> dict[str, Any]:
        return self.request("PUT", "/config", options)

    def db(self) -> dict[str, Any]:
        return self.request("GET", "/db")
