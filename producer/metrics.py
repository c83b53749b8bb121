"""Prometheus metrics of the producer: rows sent and send errors, on its own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, ProcessCollector

from stream.metrics import PREFIX, MetricsServer


class ProducerMetrics:
    """Counters of the row producer. ``reason`` labels must come from a small fixed set."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry = reg
        self._server = MetricsServer(reg)
        self.rows_sent = Counter(
            f"{PREFIX}_producer_rows_sent", "Rows acknowledged by the broker.", registry=reg
        )
        self.send_errors = Counter(
            f"{PREFIX}_producer_send_errors",
            "Rows the broker did not acknowledge, by reason.",
            ["reason"],
            registry=reg,
        )
        ProcessCollector(registry=reg)

    def sent(self, n: int) -> None:
        if n:
            self.rows_sent.inc(n)

    def send_error(self, n: int, reason: str) -> None:
        self.send_errors.labels(reason).inc(n)

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        """Serve ``/metrics`` on ``addr:port``; port 0 = do not serve. Returns the bound port."""
        return self._server.serve(port, addr)

    def close(self) -> None:
        self._server.close()
