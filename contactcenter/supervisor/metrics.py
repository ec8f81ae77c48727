"""`/metrics` in Prometheus text format, from a registry of this app's own (never the global one,
so two apps in one process, as in tests, do not collide).

Live figures are read from the statistics at scrape time (a collector), so they are exactly what
the wallboard shows. Counters (`cc_calls_total`, `cc_events_total`) count what *this process* saw
since it started, as Prometheus expects of counters; today's totals, which survive restarts, are
the gauge `cc_queue_calls_today`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from contactcenter.events import CallEnded, Event

from .services import SupervisorService
from .stats import KINDS

LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _PartsCollector(Collector):
    """Counters other parts register (`keys.COUNTERS`), read at scrape time."""

    def __init__(self, counters: Mapping[str, tuple[str, Callable[[], float]]]) -> None:
        self.counters = counters

    def collect(self) -> Iterator[CounterMetricFamily]:
        for name, (text, value) in sorted(self.counters.items()):
            yield CounterMetricFamily(name, text, value=value())


class _LiveCollector(Collector):
    def __init__(self, service: SupervisorService, clients: Callable[[], int]) -> None:
        self.service = service
        self.clients = clients

    def collect(self) -> Iterator[GaugeMetricFamily]:
        svc = self.service
        snap = svc.snapshot()
        waiting = GaugeMetricFamily(
            "cc_queue_waiting_callers", "Callers waiting now", labels=["queue"]
        )
        longest = GaugeMetricFamily(
            "cc_queue_longest_wait_seconds", "Longest current wait of a caller in the queue",
            labels=["queue"],
        )
        today = GaugeMetricFamily(
            "cc_queue_calls_today",
            "Queue legs of calls that started today (center time zone) and ended, by queue and "
            "how the leg ended (each queue counts its own legs)",
            labels=["queue", "outcome"],
        )
        sl = GaugeMetricFamily(
            "cc_queue_service_level_ratio",
            "Answered within the queue's threshold / (answered + abandoned); absent when 0/0",
            labels=["queue", "window"],
        )
        target = GaugeMetricFamily(
            "cc_queue_service_level_target_ratio", "The queue's service level target",
            labels=["queue"],
        )
        asa = GaugeMetricFamily(
            "cc_queue_asa_seconds", "Mean wait of answered calls", labels=["queue", "window"]
        )
        abandon = GaugeMetricFamily(
            "cc_queue_abandon_rate_ratio",
            "abandoned / (answered + abandoned) over the queue's legs; timeouts are not in it",
            labels=["queue", "window"],
        )
        agents = GaugeMetricFamily(
            "cc_queue_agents", "Operators of the queue by state", labels=["queue", "state"]
        )
        for q in snap["queues"]:
            name = q["name"]
            waiting.add_metric([name], q["now"]["waiting"])
            longest.add_metric([name], q["now"]["longest_wait_seconds"])
            target.add_metric([name], q["targets"]["service_level_target"])
            for kind in KINDS:
                today.add_metric([name, kind], q["today"][kind])
            for window in ("today", "hour"):
                fig = q[window]
                if fig["service_level"] is not None:
                    sl.add_metric([name, window], fig["service_level"])
                if fig["asa_seconds"] is not None:
                    asa.add_metric([name, window], fig["asa_seconds"])
                if fig["abandon_rate"] is not None:
                    abandon.add_metric([name, window], fig["abandon_rate"])
            for state, n in q["now"]["agents"].items():
                agents.add_metric([name, state], n)
        ami = GaugeMetricFamily(
            "cc_ami_connected", "1 while the AMI link to that Asterisk is up (as last reported)",
            labels=["server"],
        )
        for server, up in snap["links"].items():
            ami.add_metric([server], 1 if up else 0)
        stale = GaugeMetricFamily(
            "cc_wallboard_stale", "1 while any AMI link is down: live figures may be stale"
        )
        stale.add_metric([], 1 if snap["stale"] else 0)
        lag = GaugeMetricFamily(
            "cc_event_lag_last_seconds",
            "Receipt time minus event time of the last domain event handled",
        )
        lag.add_metric([], svc.last_lag or 0.0)
        screens = GaugeMetricFamily("cc_wallboard_clients", "Wallboard screens connected")
        screens.add_metric([], self.clients())
        yield from (waiting, longest, today, sl, target, asa, abandon, agents, ami, stale, lag,
                    screens)


class Metrics:
    def __init__(
        self, service: SupervisorService, clients: Callable[[], int],
        counters: Mapping[str, tuple[str, Callable[[], float]]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "cc_calls", "Finished calls seen by this process, by their first queue and outcome",
            ["queue", "outcome"], registry=self.registry,
        )
        self.legs = Counter(
            "cc_queue_legs", "Queue legs of the finished calls seen by this process, by queue "
            "and how the leg ended", ["queue", "outcome"], registry=self.registry,
        )
        self.events = Counter(
            "cc_events", "Domain events handled by the statistics", ["type"],
            registry=self.registry,
        )
        self.lag = Histogram(
            "cc_event_lag_seconds", "Receipt time minus the event's own time (AMI Timestamp)",
            buckets=LAG_BUCKETS, registry=self.registry,
        )
        self.registry.register(_LiveCollector(service, clients))
        self.registry.register(_PartsCollector(counters if counters is not None else {}))
        self._by_type: dict[type, Any] = {}  # labels() per event costs more than the count

    def observe(self, event: Event, lag: float) -> None:
        counter = self._by_type.get(type(event))
        if counter is None:
            counter = self._by_type[type(event)] = self.events.labels(type(event).__name__)
        counter.inc()
        self.lag.observe(lag)
        if isinstance(event, CallEnded):
            self.calls.labels(event.record.queue or "", event.record.outcome).inc()
            for leg in event.record.queue_legs:
                if leg.queue:
                    self.legs.labels(leg.queue, leg.outcome).inc()


__all__ = ["Metrics"]
