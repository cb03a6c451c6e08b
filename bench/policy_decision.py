"""One policy decision: Policy.evaluate on a 100-rule policy vs Cedar (cedarpy) on the same rules.

The policy: 48 tools x 2 rules (an amount threshold needing approval; a region, verification or
channel test) + 4 global rules (sentiment escalation, a blocked-customer deny, a VIP large-amount
escalation, a night-channel verification). The Cedar version has one ``permit`` per tool (its
base mode) and one ``forbid`` per rule, annotated with the rule id, so the determining policies
Cedar reports are our fired rules. Cedar has no floats: amounts are whole numbers on both sides.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import cedarpy

from agent_kit import Policy

from . import Result, median, report

NAME = "policy_decision"
GOAL_US = 10.0
N_TOOLS = 48
BLOCK = 50


def policy_dict() -> dict[str, Any]:
    tools: dict[str, Any] = {}
    for i in range(N_TOOLS):
        second: dict[str, Any]
        if i % 3 == 0:
            second = {"id": f"t{i}_region", "when": {"args.region": {"in": ["eu", "uk"]}}, "verification": "identity"}
        elif i % 3 == 1:
            second = {"id": f"t{i}_unverified", "when": {"context.customer_verified": {"ne": True}}, "deny": "verify first"}
        else:
            second = {"id": f"t{i}_phone", "when": {"context.channel": "phone", "args.amount": {"gte": 20}},
                      "approval": {"role": "lead", "count": 2}}
        tools[f"t{i}"] = {"mode": "execute_limited", "rules": [
            {"id": f"t{i}_over", "when": {"args.amount": {"gt": 100 + i}}, "approval": {"role": "lead"}}, second]}
    return {
        "version": 1, "approvers": {"lee": ["lead"], "sam": ["lead"]},
        "rules": [
            {"id": "angry", "when": {"context.sentiment": "angry"}, "mode": "escalate"},
            {"id": "blocked", "when": {"context.blocked": True}, "deny": "customer is blocked"},
            {"id": "vip_large", "when": {"context.vip": True, "args.amount": {"gt": 1000}}, "mode": "escalate"},
            {"id": "night", "when": {"context.channel": "night"}, "verification": "confirm"},
        ],
        "tools": tools,
    }


def cedar_text() -> str:
    out = []
    for i in range(N_TOOLS):
        r = f'resource == Tool::"t{i}"'
        out.append(f'@id("t{i}_base") permit(principal, action == Action::"call", {r});')
        out.append(f'@id("t{i}_over") forbid(principal, action == Action::"call", {r}) '
                   f'when {{ context.args has amount && context.args.amount > {100 + i} }};')
        if i % 3 == 0:
            cond = 'context.args has region && ["eu", "uk"].contains(context.args.region)'
        elif i % 3 == 1:
            cond = '!(context.ctx has customer_verified && context.ctx.customer_verified == true)'
        else:
            cond = ('context.ctx has channel && context.ctx.channel == "phone" && '
                    'context.args has amount && context.args.amount >= 20')
        second = ["region", "unverified", "phone"][i % 3]
        out.append(f'@id("t{i}_{second}") forbid(principal, action == Action::"call", {r}) when {{ {cond} }};')
    out += [
        '@id("angry") forbid(principal, action, resource) when { context.ctx has sentiment && context.ctx.sentiment == "angry" };',
        '@id("blocked") forbid(principal, action, resource) when { context.ctx has blocked && context.ctx.blocked == true };',
        '@id("vip_large") forbid(principal, action, resource) when { context.ctx has vip && context.ctx.vip == true '
        '&& context.args has amount && context.args.amount > 1000 };',
        '@id("night") forbid(principal, action, resource) when { context.ctx has channel && context.ctx.channel == "night" };',
    ]
    return "\n".join(out)


def requests(n: int, seed: int = 7) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        args = {"amount": rnd.choice([5, 20, 80, 120, 400, 1500]), "region": rnd.choice(["eu", "us", "uk", "apac"]),
                "order_id": rnd.randint(1000, 9999)}
        ctx = {"customer_verified": rnd.random() < 0.7, "sentiment": rnd.choice(["calm"] * 9 + ["angry"]),
               "channel": rnd.choice(["chat", "phone", "email", "night"]), "vip": rnd.random() < 0.1,
               "blocked": rnd.random() < 0.02, "customer_id": f"c{rnd.randint(1, 500)}"}
        out.append((f"t{rnd.randrange(N_TOOLS)}", args, ctx))
    return out


def _cedar_request(tool: str, args: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    return {"principal": 'Agent::"agent"', "action": 'Action::"call"', "resource": f'Tool::"{tool}"',
            "context": {"args": args, "ctx": ctx}}


def run(quick: bool = False) -> Result:
    n = 2_000 if quick else 20_000
    policy = Policy.from_dict(policy_dict())
    n_rules = len(policy.document.rules) + sum(len(t.rules) for t in policy.tools.values())
    text = cedar_text()
    pset = cedarpy.PolicySet.from_str(text)
    entities = cedarpy.Entities.from_json_str("[]")
    reqs = requests(n)
    creqs = [_cedar_request(*r) for r in reqs]

    # Agreement check: a request our policy allows outright is one Cedar allows, and back.
    for (tool, args, ctx), creq in zip(reqs[:300], creqs[:300]):
        ours_allow = policy.evaluate(tool, args, ctx).outcome == "allow"
        cedar_allow = cedarpy.is_authorized(creq, pset, entities).allowed
        assert ours_allow == cedar_allow, (tool, args, ctx)

    evaluate = policy.evaluate
    is_authorized = cedarpy.is_authorized
    for r, c in zip(reqs[:500], creqs[:500]):  # warm-up
        evaluate(*r)
        is_authorized(c, pset, entities)
    # Interleaved blocks of BLOCK decisions (ours, then Cedar, then the other way round): a block is
    # long enough that the clock's own cost and one-off cache misses do not dominate a 5 us call,
    # short enough that both sides see the same machine load. Per-decision time = block / BLOCK.
    ours_t: list[float] = []
    cedar_t: list[float] = []
    single_t: list[float] = []
    pc = time.perf_counter_ns
    for k in range(0, len(reqs) - BLOCK + 1, BLOCK):
        rs, cs = reqs[k:k + BLOCK], creqs[k:k + BLOCK]

        def ours_block() -> None:
            t0 = pc()
            for r in rs:
                evaluate(*r)
            ours_t.append((pc() - t0) / 1000 / BLOCK)

        def cedar_block() -> None:
            t0 = pc()
            for c in cs:
                is_authorized(c, pset, entities)
            cedar_t.append((pc() - t0) / 1000 / BLOCK)

        for fn in ((ours_block, cedar_block) if (k // BLOCK) % 2 == 0 else (cedar_block, ours_block)):
            fn()
    for r in reqs[:2000]:  # single calls, each timed on its own (clock cost included), for the tail
        t0 = pc()
        evaluate(*r)
        single_t.append((pc() - t0) / 1000)
    # Cedar re-parsing the policy text on every call (its plain string API).
    text_t = []
    for c in creqs[: (50 if quick else 300)]:
        t0 = pc()
        is_authorized(c, text, "[]")
        text_t.append((pc() - t0) / 1000)
    # Cedar's batch call, per request.
    batch_t = []
    for k in range(0, len(creqs), 1000):
        chunk = creqs[k:k + 1000]
        t0 = pc()
        cedarpy.is_authorized_batch(chunk, pset, entities)
        batch_t.append((pc() - t0) / 1000 / len(chunk))
    ours_m, cedar_m = median(ours_t), median(cedar_t)
    res = Result(NAME, ours_m, cedar_m, "us", f"<={GOAL_US:g}us", ours_m <= GOAL_US,
                 "Policy.evaluate", "cedarpy.is_authorized (parsed PolicySet)",
                 extra={"rules": n_rules, "decisions": n, "cedar_text_per_call_us": median(text_t),
                        "cedar_batch_per_request_us": median(batch_t), "cedar_policies": text.count(";"),
                        "block": BLOCK, "ours_single_call_median_us": median(single_t),
                        "ours_p99_us": sorted(single_t)[int(len(single_t) * .99)]})
    return report(res, [
        f"{n_rules} rules over {N_TOOLS} tools, {n} decisions (same requests both sides, alternating blocks of {BLOCK})",
        f"Policy.evaluate                              median {ours_m:7.2f} us  (single calls timed alone: median "
        f"{res.extra['ours_single_call_median_us']:.1f} us, p99 {res.extra['ours_p99_us']:.1f} us)",
        f"cedarpy.is_authorized, parsed PolicySet      median {cedar_m:7.2f} us",
        f"cedarpy.is_authorized, policy text per call  median {median(text_t):7.1f} us",
        f"cedarpy.is_authorized_batch, per request     median {median(batch_t):7.2f} us",
    ])


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(run(True).to_json(), indent=1))
