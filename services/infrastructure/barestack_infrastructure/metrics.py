"""Prometheus text exposition format (version 0.0.4) of a snapshot."""

from collections.abc import Iterator

from barestack_infrastructure.collector import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, kind: str, help_text: str) -> Iterator[str]:
    yield f"# HELP {name} {help_text}"
    yield f"# TYPE {name} {kind}"


def _lines(snapshot: Snapshot) -> Iterator[str]:
    yield from _family(
        "barestack_up", "gauge", "Whether every critical component (backend, PostgreSQL, Redis) is up."
    )
    yield f"barestack_up {int(snapshot.healthy)}"
    yield from _family(
        "barestack_check_age_seconds", "gauge", "Seconds since the checks below were run (they are cached)."
    )
    yield f"barestack_check_age_seconds {snapshot.age_s:.3f}"
    yield from _family(
        "barestack_component_up", "gauge", "Whether a component answered its check (1) or not (0)."
    )
    for check in snapshot.checks:
        yield f'barestack_component_up{{component="{_label(check.component)}"}} {int(check.ok)}'
    yield from _family(
        "barestack_check_duration_seconds", "gauge", "How long the last check of a component took."
    )
    for check in snapshot.checks:
        component = _label(check.component)
        yield f'barestack_check_duration_seconds{{component="{component}"}} {check.duration_s:.6f}'
    redis = next((c for c in snapshot.checks if c.component == "redis" and c.ok), None)
    if redis is not None and "runs_stream_length" in redis.details:
        yield from _family("barestack_runs_stream_length", "gauge", "Runs queued in Redis and not yet done.")
        yield f"barestack_runs_stream_length {redis.details['runs_stream_length']}"
    nginx = next((c for c in snapshot.checks if c.component == "nginx" and c.ok), None)
    if nginx is not None and "active_connections" in nginx.details:
        yield from _family("barestack_nginx_active_connections", "gauge", "Open client connections in nginx.")
        yield f"barestack_nginx_active_connections {nginx.details['active_connections']}"
        yield from _family("barestack_nginx_requests_total", "counter", "Requests nginx has served.")
        yield f"barestack_nginx_requests_total {nginx.details['requests']}"
    yield from _backup_lines(snapshot)
    yield from _family(
        "barestack_systemd_available", "gauge", "Whether systemd could be asked about the units."
    )
    yield f"barestack_systemd_available {int(snapshot.systemd_available)}"
    # Unit series are left out while their state is unknown: a made-up 0 would read as "down".
    known = [unit for unit in snapshot.units if unit.known]
    if known:
        yield from _family(
            "barestack_unit_active", "gauge", "Whether a systemd unit is active (1) or not (0)."
        )
        for unit in known:
            yield f'barestack_unit_active{{unit="{_label(unit.unit)}"}} {int(unit.active)}'
        yield from _family("barestack_unit_restarts_total", "counter", "How often systemd restarted a unit.")
        for unit in known:
            if unit.restarts is not None:
                yield f'barestack_unit_restarts_total{{unit="{_label(unit.unit)}"}} {unit.restarts}'


def _backup_lines(snapshot: Snapshot) -> Iterator[str]:
    # Like the units: a kind whose time or result the status file does not tell has no series.
    entries = [] if snapshot.backups is None else list(snapshot.backups.entries.values())
    succeeded = [entry for entry in entries if entry.last_success_at is not None]
    if succeeded:
        yield from _family(
            "barestack_backup_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the newest good backup, check, drill or Redis snapshot of a kind.",
        )
        for entry in succeeded:
            stamp = entry.last_success_at.timestamp()  # type: ignore[union-attr]
            yield f'barestack_backup_last_success_timestamp_seconds{{kind="{entry.kind}"}} {stamp:.0f}'
    ran = [entry for entry in entries if entry.run_ok is not None]
    if ran:
        yield from _family(
            "barestack_backup_last_run_ok",
            "gauge",
            "Whether the last run of a kind succeeded (1) or failed (0).",
        )
        for entry in ran:
            yield f'barestack_backup_last_run_ok{{kind="{entry.kind}"}} {int(bool(entry.run_ok))}'
    for name, attribute, help_text in (
        ("barestack_backup_duration_seconds", "duration_s", "How long the newest good one of a kind took."),
        ("barestack_backup_size_bytes", "size_bytes", "Repository size of the newest good one of a kind."),
        ("barestack_backup_max_age_seconds", "max_age_s", "Age that makes a kind a warning."),
    ):
        known = [entry for entry in entries if getattr(entry, attribute) is not None]
        if known:
            yield from _family(name, "gauge", help_text)
            for entry in known:
                yield f'{name}{{kind="{entry.kind}"}} {getattr(entry, attribute):.0f}'


def render(snapshot: Snapshot) -> str:
    return "\n".join(_lines(snapshot)) + "\n"
