"""The ONVIF client a probe talks through: the agent's pooled one, or a fresh one closed afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from edge_agent.devices.onvif_client import OnvifClient, OnvifPool, TransportAuth
from edge_agent.probes import ProbeSettings
from tianwang.protocol import OnvifEndpoint


@asynccontextmanager
async def onvif_client(endpoint: OnvifEndpoint, settings: ProbeSettings) -> AsyncIterator[OnvifClient]:
    auth: TransportAuth = (
        endpoint.transport_auth if "transport_auth" in endpoint.model_fields_set else settings.transport_auth
    )
    options = {
        "timeout_s": settings.call_timeout_s,
        "adjust_time": settings.adjust_time,
        "transport_auth": auth,
        "max_answer_bytes": settings.max_answer_bytes,
        "trust_device_addresses": endpoint.trust_device_addresses,
    }
    password = endpoint.password.get_secret_value()
    pool: OnvifPool | None = settings.pool
    if pool is not None:
        yield await pool.get(endpoint.host, endpoint.port, endpoint.username, password, **options)
        return
    client = OnvifClient(endpoint.host, endpoint.port, endpoint.username, password, **options)
    try:
        yield client
    finally:
        await client.close()
