"""Prometheus metrics of one worker, through ``prometheus-client`` (``GET /metrics``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .cluster.hub import Hub
    from .web.extension import AppRuntime


class _HubCollector(Collector):
    """Reads the registry at scrape time: nothing is counted on the hot path for these."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        sessions = self.hub.registry.all()
        by_state = GaugeMetricFamily("gateway_sessions", "Live sessions by state.",
                                     labels=["state"])
        for state, count in self.hub.registry.counts().items():
            by_state.add_metric([state], count)
        yield by_state
        depths = [s.unacked for s in sessions]
        yield GaugeMetricFamily("gateway_replay_buffer_commands",
                                "Unacknowledged commands kept for replay, all sessions.",
                                value=sum(depths))
        yield GaugeMetricFamily("gateway_replay_buffer_max_commands",
                                "Largest replay buffer of one session.",
                                value=max(depths, default=0))
        yield CounterMetricFamily("gateway_commands",
                                  "Commands sent to sessions (live and closed).",
                                  value=self.hub.metrics.closed_commands
                                  + sum(s.last_seq for s in sessions))
        yield GaugeMetricFamily("gateway_bus_up", "1 when the bus is reachable.",
                                value=1 if self.hub.bus.healthy else 0)
        yield GaugeMetricFamily("gateway_presence_users",
                                "Users online across the cluster, as this worker sees it.",
                                value=len(self.hub.presence.online()))
        yield GaugeMetricFamily("gateway_sse_readers",
                                "Open server-sent event readers (GET /api/v1/stream).",
                                value=self.hub.streams.readers())
        yield GaugeMetricFamily("gateway_cluster_workers",
                                "Workers this worker knows to be alive (itself included).",
                                value=max(1, len(self.hub.presence.workers())))


class GatewayMetrics:
    """The counters a hub updates, in a registry of its own (one per app)."""

    def __init__(self, hub: Hub) -> None:
        self.registry = CollectorRegistry()
        self.closed_commands = 0  # commands of sessions already closed
        self.connections = Counter(
            "gateway_connections", "Connections accepted: a new session or a resumed one.",
            ["outcome"], registry=self.registry)
        self.refusals = Counter(
            "gateway_refusals", "Connections refused, by code.", ["code"],
            registry=self.registry)
        self.resume_failures = Counter(
            "gateway_resume_failures", "Resumes that could not happen, by reason.",
            ["reason"], registry=self.registry)
        self.closes = Counter(
            "gateway_sessions_closed", "Sessions closed, by reason.", ["reason"],
            registry=self.registry)
        self.events = Counter(
            "gateway_events", "Events answered, by result (ok or the error code).",
            ["result"], registry=self.registry)
        self.event_seconds = Histogram(
            "gateway_event_handling_seconds", "Time to handle one event, to its ack.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry)
        self.bus_messages = Counter(
            "gateway_bus_messages", "Bus messages: published by this worker, or received "
            "from others and delivered here, by type.", ["direction", "type"],
            registry=self.registry)
        self.registry.register(_HubCollector(hub))


class GuardCollector(Collector):
    """What the connection guard refused and closed (read at scrape time)."""

    def __init__(self, runtime: AppRuntime) -> None:
        self.runtime = runtime  # its guard, and the embedded server's header waits

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        guard = self.runtime.guard
        admission = guard.admission
        yield GaugeMetricFamily("gateway_connections_without_session",
                                "Connections that have no session (yet, or any more).",
                                value=admission.counts()[0])
        refused = CounterMetricFamily(
            "gateway_connections_refused", "Connections refused before they had a session: "
            "too many without one (handshake), or too many waiting for headers.",
            labels=["reason"])
        refused.add_metric(["without_session"], admission.refused)
        refused.add_metric(["header_waits"], getattr(self.runtime.header_waits, "refused", 0))
        yield refused
        closed = CounterMetricFamily(
            "gateway_connections_hung_up", "Connections the gateway closed, by why: no "
            "session in time (deadline), too much sent without one (strikes), its session "
            "ended for abuse (abuse).", labels=["reason"])
        for reason in ("deadline", "strikes", "abuse"):
            closed.add_metric([reason], guard.closed[reason])
        yield closed
