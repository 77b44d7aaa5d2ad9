"""What a deployed machine is serving: its current release, its web workers, Nginx's error answers."""

from __future__ import annotations

import shlex
from collections import Counter

from barestack_bench.hosts import Host
from barestack_bench.wrk import USER_AGENT

CURRENT = "/srv/barestack/current"
NGINX_ACCESS_LOG = "/var/log/nginx/access.log"
WEB_SERVICES = ("backend", "frontend", "infrastructure")


def current_release(host: Host) -> str:
    """The release directory `current` points at (empty if there is none)."""
    result = host.run(["readlink", "-f", CURRENT], check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def stale_web_workers(host: Host) -> list[str]:
    """gunicorn workers whose working directory is not in the current release (should be none)."""
    services = " ".join(WEB_SERVICES)
    script = (
        f"current=$(readlink -f {CURRENT}); "
        f"for service in {services}; do "
        # The live blue/green colour: where the link Nginx connects through points.
        'colour=$(basename "$(readlink /etc/nginx/barestack-upstreams/$service.sock)" .sock); '
        "main=$(systemctl show -p MainPID --value barestack-$service@$colour); "
        '[ "$main" -gt 0 ] || { echo "$service: not running"; continue; }; '
        "for worker in $(cat /proc/$main/task/*/children); do "
        "cwd=$(readlink /proc/$worker/cwd || true); "
        'case "$cwd" in "$current"/*) ;; *) echo "$service worker $worker: $cwd";; esac; '
        "done; done"
    )
    result = host.run(["bash", "-c", script])
    return [line for line in result.stdout.splitlines() if line.strip()]


def access_log_size(host: Host) -> int:
    result = host.run(["stat", "-c", "%s", NGINX_ACCESS_LOG])
    return int(result.stdout.strip())


def error_answers_since(host: Host, offset: int) -> Counter[str]:
    """'<status> <path>' -> count, for the bench's requests Nginx answered other than 2xx/3xx
    after ``offset`` (combined log format, the user agent quoted, then the site's upstream=)."""
    agent = f'"{USER_AGENT}"'
    script = (
        f"tail -c +{offset + 1} {shlex.quote(NGINX_ACCESS_LOG)} | "
        f"awk -v agent={shlex.quote(agent)} "
        "'index($0, agent) > 0 && $9 !~ /^[23][0-9][0-9]$/ {print $9, $7}'"
    )
    result = host.run(["bash", "-c", script])
    return Counter(line.strip() for line in result.stdout.splitlines() if line.strip())
