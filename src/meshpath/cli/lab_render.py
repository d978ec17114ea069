"""Rendering for `meshpath lab …`: status tables, scenario results, demo steps."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from meshpath.lab import ScenarioResult
from meshpath.lab.demo import DemoStep


def format_watch(where: dict[str, str]) -> Text:
    return Text(
        f"meshpath watch runs in {where['namespace']}: metrics {where['url']} (inside that "
        f"namespace only); textfile {where['textfile']}; log {where['log']}\n"
        f'  meshpath lab exec conn -- python3 -c "import urllib.request as u; '
        f"print(u.urlopen('{where['url']}').read().decode())\""
    )


def format_worker(info: dict[str, str]) -> Text:
    return Text(
        f"Worker: {info['worker']}, in workerd at {info['url']} (inside the edge namespace)\n"
        f"  call it:  {info['call']}\n"
        f"       or:  {info['curl']}\n"
        f"  its log (wrangler tail): {info['log']}"
    )


def format_step(step: DemoStep) -> Panel:
    mark = "[green]✓[/green]" if step.ok else "[red]✗[/red]"
    body = Text("\n".join(step.lines), overflow="fold") if step.lines else Text("")
    return Panel(body, title=f"{mark} {step.title} ({step.seconds:.1f}s)", title_align="left")


def format_result(result: ScenarioResult) -> RenderableType:
    table = Table(show_header=False, box=None, padding=(0, 1))
    for check in result.checks:
        table.add_row(
            "[green]ok[/green]" if check.ok else "[red]FAIL[/red]", check.name, check.detail
        )
    verdict = "[green]passed[/green]" if result.passed else "[red]FAILED[/red]"
    t = result.timings
    head = Text.from_markup(
        f"[bold]{result.name}[/bold] {verdict}  (setup {t['setup']}s, fix {t['fix']}s, "
        + (f"drill {t['drill']}s, " if "drill" in t else "")
        + f"call {t['observe']}s)"
    )
    return Group(head, table)


def format_summary(results: list[ScenarioResult]) -> Table:
    table = Table(title="lab scenarios")
    for col in ("scenario", "result", "worker", "service saw", "seconds"):
        table.add_column(col)
    for r in results:
        total = round(sum(r.timings.values()), 1)
        table.add_row(
            r.name,
            "passed" if r.passed else "FAILED",
            f"{r.worker.status} {r.worker.body[:24] if r.worker.status != 200 else ''}".strip(),
            r.worker.seen_source or "-",
            str(total),
        )
    return table


def format_status(labs: list[dict[str, object]]) -> RenderableType:
    if not labs:
        return Text("no lab is running")
    table = Table(title="labs")
    for col in ("instance", "scenario", "fix", "owner", "namespaces (pids)"):
        table.add_column(col)
    for lab in labs:
        spaces = lab["namespaces"]
        assert isinstance(spaces, dict)
        nss = "\n".join(f"{ns} ({len(pids)})" for ns, pids in spaces.items())
        owner = lab["owner_pid"]
        table.add_row(
            str(lab["instance"]),
            str(lab["scenario"]),
            str(lab["fixed"] or "-"),
            "detached" if owner is None else f"pid {owner}",
            nss or "(none)",
        )
    return table
