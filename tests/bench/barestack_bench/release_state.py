"""What a deployed machine is serving: its current release, its web workers, Nginx's error answers."""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass

from barestack_bench.hosts import Host
from barestack_bench.wrk import USER_AGENT

CURRENT = "/srv/barestack/current"
NGINX_ACCESS_LOG = "/var/log/nginx/access.log"
WEB_SERVICES = ("backend", "frontend", "infrastructure")


def current_release(host: Host) -> str:
    """The release directory `current` points at (empty if there is none)."""
    result = host.run(["readlink", "-f", CURRENT], check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


UPSTREAM_LINKS = "/etc/nginx/barestack-upstreams"


@dataclass(frozen=True)
class LiveInstance:
    """A web service's live blue/green colour (where Nginx's link points) and its gunicorn master."""

    colour: str
    pid: int  # 0: not running
    argv: tuple[str, ...]
    # Seconds since the epoch: when the master started, and when the gunicorn config it runs (-c)
    # was last written (0: unknown).
    started: int = 0
    config_written: int = 0
    # That config's top-level `name = value` lines, as written (gunicorn's setting names).
    config: tuple[tuple[str, str], ...] = ()

    def option(self, name: str) -> str | None:
        """The value gunicorn was started with for ``name`` (e.g. -c), None if absent."""
        for index, word in enumerate(self.argv[:-1]):
            if word == name:
                return self.argv[index + 1]
        return None

    def setting(self, name: str) -> str | None:
        """The value (as written) of gunicorn's setting ``name`` (e.g. keepalive) in the config this
        master runs. gunicorn reads its config only when it starts, so the file's value is the
        running one only if the master started after the file was last written; None otherwise,
        or when the file does not set it."""
        if self.started <= 0 or self.config_written > self.started:
            return None
        return dict(self.config).get(name)


def _main_pid(process_manager: str) -> str:
    """Shell setting $main to the gunicorn master of $service's $colour (0 when it is not running).

    systemd: the instance's MainPID. supervisor: the program's pid (with-env, setpriv and
    systemd-cat each exec the next, so it is gunicorn's master); not a number when unknown.
    """
    if process_manager == "systemd":
        query = "systemctl show -p MainPID --value barestack-$service@$colour"
    elif process_manager == "supervisor":
        query = "supervisorctl pid barestack-$service-$colour"
    else:
        raise ValueError(f"unknown process manager {process_manager!r}")
    return f'main=$({query} 2>/dev/null); case "$main" in ""|*[!0-9]*) main=0;; esac; '


def _live_masters_script(process_manager: str, per_master: str) -> str:
    services = " ".join(WEB_SERVICES)
    return (
        f"for service in {services}; do "
        # The live blue/green colour: where the link Nginx connects through points.
        f'colour=$(basename "$(readlink {UPSTREAM_LINKS}/$service.sock)" .sock); '
        + _main_pid(process_manager)
        + per_master
        + "done"
    )


def live_instances(host: Host, process_manager: str) -> dict[str, LiveInstance]:
    """Each web service's live colour, the command line its gunicorn master runs, when it started,
    and the gunicorn config it was started with (-c): when that was last written, its settings."""
    script = _live_masters_script(
        process_manager,
        "started=0; written=0; config=; "
        'if [ "$main" -gt 0 ]; then '
        'started=$(( $(date +%s) - $(ps -o etimes= -p "$main") )); '
        "config=$(tr '\\0' '\\n' < /proc/$main/cmdline "
        "| awk 'previous == \"-c\" {print; exit} {previous = $0}'); "
        'if [ -n "$config" ]; then written=$(stat -c %Y "$config"); fi; '
        "fi; "
        'printf "%s %s %s %s %s " "$service" "$colour" "$main" "$started" "$written"; '
        '{ [ "$main" -gt 0 ] && tr "\\0" "\\037" < /proc/$main/cmdline; } || true; '
        "printf '\\036'; "
        '{ [ -n "$config" ] && grep -E "^[a-z_]+ = " "$config" | tr "\\n" "\\037"; } || true; echo; ',
    )
    return parse_live_instances(host.run(["bash", "-c", script]).stdout)


def parse_live_instances(output: str) -> dict[str, LiveInstance]:
    """``live_instances``' lines: service, colour, master PID, its start and its config's last write
    (epoch seconds), its argv joined by 0x1f, 0x1e, then the config's `name = value` lines joined by 0x1f."""
    found: dict[str, LiveInstance] = {}
    # Not splitlines(): it also splits at 0x1e.
    for line in filter(None, output.split("\n")):
        service, colour, pid, started, written, rest = line.split(" ", 5)
        command, _, config_lines = rest.partition("\x1e")
        argv = tuple(word for word in command.split("\x1f") if word)
        config = tuple(
            (name, value)
            for name, _, value in (entry.partition(" = ") for entry in config_lines.split("\x1f"))
            if value
        )
        found[service] = LiveInstance(colour, int(pid), argv, int(started), int(written), config)
    return found


def stale_web_workers(host: Host, process_manager: str) -> list[str]:
    """gunicorn workers whose working directory is not in the current release (should be none)."""
    script = f"current=$(readlink -f {CURRENT}); " + _live_masters_script(
        process_manager,
        '[ "$main" -gt 0 ] || { echo "$service: not running"; continue; }; '
        "for worker in $(cat /proc/$main/task/*/children); do "
        "cwd=$(readlink /proc/$worker/cwd || true); "
        'case "$cwd" in "$current"/*) ;; *) echo "$service worker $worker: $cwd";; esac; '
        "done; ",
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
