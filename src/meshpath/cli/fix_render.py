"""Rendering for `meshpath fix` and `meshpath verify`: the plan, the result, the checks."""

from __future__ import annotations

from typing import Any

import msgspec
from rich.console import Group
from rich.text import Text

from meshpath.apply import ApplyResult
from meshpath.apply import journal as jr
from meshpath.cli.context import AppContext, error_console
from meshpath.errors import EXIT_ENVIRONMENT
from meshpath.fix import Plan
from meshpath.fix.verify import VerifyCheck
from meshpath.usecase.fix import Proposal

_EXIT = {"planned": 0, "applied": 0, "nothing-to-do": 0, "rolled-back": 0, "failed": 1}


def plan_dict(plan: Plan) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(plan)
    data["empty"] = plan.empty
    return data


def format_plan(plan: Plan, interrupted: jr.Journal | None) -> Group:
    lines: list[Text] = []
    if interrupted is not None:
        lines.append(
            Text(
                f"! an earlier fix (journal #{interrupted.seq}, mode {interrupted.mode}) was "
                "interrupted: run 'meshpath fix --resume' or 'meshpath fix --rollback'",
                style="bold red",
            )
        )
    title = f"meshpath fix --mode {plan.mode}: " + (
        "nothing to do" if plan.empty else f"{len(plan.steps)} step(s)"
    )
    lines.append(Text(title, style="bold"))
    for item in plan.already:
        lines.append(Text(f"  already in place: {item}", style="green"))
    for i, step in enumerate(plan.steps, start=1):
        lines.append(Text(f"{i}. {step.description}", style="bold cyan"))
        lines.append(Text(f"   because: {step.check}"))
        lines.append(Text(f"   does:    {step.action.describe()}"))
        if step.inverse is not None:
            lines.append(Text(f"   undo:    {step.inverse.describe()}"))
        if step.detail:
            lines.append(Text("   " + step.detail.rstrip().replace("\n", "\n   "), style="dim"))
    for note in plan.notes:
        lines.append(Text(f"note: {note}", style="yellow"))
    return Group(*lines)


def emit_plan(actx: AppContext, proposal: Proposal, result: ApplyResult | None = None) -> None:
    """The plan as JSON (fix-plan; a dry run adds its "planned" result) or for a person."""
    interrupted = proposal.interrupted
    if actx.json_output:
        data: dict[str, Any] = {
            "plan": plan_dict(proposal.plan),
            "interrupted": interrupted.seq if interrupted else None,
            "prediction": proposal.forecast,
        }
        if result is not None:
            data["result"] = result.to_dict()
        actx.emit(data, schema="fix-plan")
        return
    actx.console.print(format_plan(proposal.plan, interrupted))
    if proposal.forecast:
        actx.console.print(Text(f"simulator: {proposal.forecast}", style="magenta"))


def emit_result(
    actx: AppContext, result: ApplyResult, plan: Plan | None = None, rollback: bool = False
) -> int:
    code = _EXIT.get(result.status, 3)
    if result.journal_error is not None:
        code = EXIT_ENVIRONMENT
        error_console().print(
            f"meshpath: error: {result.journal_error}; {journal_advice(result)}",
            markup=False,
            highlight=False,
        )
    if actx.json_output:
        data: dict[str, Any] = {"result": result.to_dict()}
        if plan is not None:
            data["plan"] = plan_dict(plan)
        actx.emit(data, schema="fix-result")
        return code
    actx.console.print(result_line(result, rollback), markup=False)
    return code


def result_line(result: ApplyResult, rollback: bool) -> str:
    if result.status == "nothing-to-do":
        what = "no applied meshpath fix to roll back" if rollback else "the fix is already in place"
        return f"nothing to do: {what}"
    if result.status == "failed":
        return (
            f"FAILED at {result.failed_step}: {result.error}; rolled back "
            f"({len(result.undone)} step(s) undone); the host is as before"
        )
    if result.status == "rollback-failed":
        return (
            f"FAILED and the rollback failed too at {result.failed_step}: {result.error}; "
            f"journal {result.journal}"
        )
    return f"{result.status}; journal {result.journal}"


def journal_advice(result: ApplyResult) -> str:
    """What to do when the host changed as reported but its journal could not say so."""
    if result.status == "applied":
        return "the fix is applied; run 'meshpath fix --resume' once the state dir is writable"
    if result.status in ("failed", "rolled-back"):
        return (
            "the host was rolled back; run 'meshpath fix --rollback' once the state directory "
            "is writable (it finds nothing left to undo)"
        )
    return "run 'meshpath fix --rollback' once the state directory is writable"


def format_checks(checks: tuple[VerifyCheck, ...], ok: bool) -> Group:
    lines = [
        Text(f"{'ok  ' if c.ok else 'FAIL'} {c.view:10} {c.name}: {c.detail}",
             style="green" if c.ok else "red")
        for c in checks
    ]  # fmt: skip
    lines.append(Text("verify: all checks hold" if ok else "verify: FAILED", style="bold"))
    return Group(*lines)
