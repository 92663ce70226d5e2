"""Prometheus metrics of one server (its own registry, so several apps in one process never
share counters): request latency per route template, model tokens and cost per collection,
answers and ingest jobs by outcome."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from ..types import Answer
from .jobs import Job

CONTENT_TYPE = CONTENT_TYPE_LATEST
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram("domainrag_http_request_duration_seconds", "HTTP request latency by route template.",
                                 ("method", "route", "status"), buckets=_BUCKETS, registry=self.registry)
        self.tokens = Counter("domainrag_model_tokens", "Model tokens used by answers.",
                              ("collection", "kind"), registry=self.registry)
        self.cost = Counter("domainrag_model_cost_usd", "Model cost of answers in USD (priced models only).",
                            ("collection",), registry=self.registry)
        self.answers = Counter("domainrag_answers", "Answers by outcome.", ("collection", "outcome"),
                               registry=self.registry)
        self.jobs = Counter("domainrag_ingest_jobs", "Ingest jobs finished, by final state.", ("state",),
                            registry=self.registry)
        self.files = Counter("domainrag_ingest_files", "Files ingested by jobs, by outcome.", ("outcome",),
                             registry=self.registry)

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.latency.labels(method, route, str(status)).observe(seconds)

    def answer(self, collection: str, answer: Answer) -> None:
        usage = answer.usage
        self.tokens.labels(collection, "prompt").inc(usage.prompt_tokens)
        self.tokens.labels(collection, "completion").inc(usage.completion_tokens)
        if usage.cost_usd:
            self.cost.labels(collection).inc(usage.cost_usd)
        self.answers.labels(collection, "abstained" if answer.abstained else "answered").inc()

    def job(self, job: Job) -> None:
        self.jobs.labels(job.state).inc()
        self.files.labels("failed").inc(len(job.failures))
        self.files.labels("done").inc(max(0, job.files_done - len(job.failures)))

    def render(self) -> bytes:
        return generate_latest(self.registry)
