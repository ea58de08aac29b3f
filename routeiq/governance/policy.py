"""The policy engine: declarative allow/deny rules, judged after authentication.

Rules live in a YAML file (``routeiq.policy.file``)::

    rules:
      - name: block-interns-premium
        priority: 10            # lower is judged first; ties keep file order
        action: deny
        reason: interns may not use premium models
        match:                  # every field given must match; a list means any of its items
          team: [interns]
          group: [premium, "gpt-4o*"]

String fields are ``fnmatch`` globs (case-sensitive). The first matching rule by priority decides;
when none matches, ``policy.default_action`` does. A ``served_model`` rule cannot be judged before
routing, so it is judged per deployment: the deployments it denies are excluded from routing, and
the request is refused only when every deployment of the requested group is denied.

The file is re-read when it changes (mtime, then content hash) and on ``POST /admin/policies/reload``;
the reload goes out as the live change ``policy`` so every worker and replica re-reads its copy, and
one whose copy does not hash to the announced digest reports so in ``GET /admin/changes``. A file
that does not validate is refused with its reason and the rules in force keep serving.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import ipaddress
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from routeiq.config import CONFIG_PATH_ENV
from routeiq.periodic import every, stop
from routeiq.routing.deployments import Deployment, DeploymentTable
from routeiq.routing.profiles import resolve_target
from routeiq.settings import PolicySettings, Settings
from routeiq.state.changes import Change, ChangeRefused, LiveChanges

logger = logging.getLogger("routeiq.policy")

SUBJECT = "policy"
DEFAULT_RULE = "default"  # how the default action is named in headers and explanations
PATTERN_FIELDS = ("team", "user", "key_id", "group", "served_model", "route", "method")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PolicyError(Exception):
    """The policy file cannot be used; the message names the file, the rule and the field."""


def normalise_route(path: str) -> str:
    """``/v1/chat/completions`` and ``/chat/completions`` are the same API: rules and requests
    are both compared without the ``/v1`` prefix."""
    if path == "/v1":
        return "/"
    return path[3:] if path.startswith("/v1/") else path


def _glob(patterns: Sequence[str]) -> re.Pattern[str]:
    return re.compile("|".join(fnmatch.translate(pattern) for pattern in patterns))


class RuleMatch(BaseModel):
    """What a rule applies to. Unset fields match anything; a rule with no match applies to all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    team: list[str] | None = Field(default=None, description="Team of the virtual key.")
    user: list[str] | None = Field(default=None, description="User of the virtual key.")
    key_id: list[str] | None = Field(default=None, description="Virtual key id.")
    group: list[str] | None = Field(default=None, description="Requested model: group or profile name.")
    served_model: list[str] | None = Field(
        default=None, description="Deployment model, `provider/model` or bare `model`."
    )
    route: list[str] | None = Field(default=None, description="Path, with or without the /v1 prefix.")
    method: list[str] | None = Field(default=None, description="HTTP method.")
    source_cidr: list[str] | None = Field(default=None, description="Client address networks.")

    _compiled: CompiledMatch | None = PrivateAttr(default=None)

    @field_validator("*", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("*")
    @classmethod
    def _not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("an empty list matches nothing; leave the field out to match anything")
            if any(not item.strip() for item in value):
                raise ValueError("patterns must not be empty")
        return value

    @field_validator("route")
    @classmethod
    def _normalise_routes(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for route in value:
            if not route.startswith(("/", "*")):
                raise ValueError(f"route {route!r} must start with '/'")
        return [normalise_route(route) for route in value]

    @field_validator("method")
    @classmethod
    def _upper_methods(cls, value: list[str] | None) -> list[str] | None:
        return [method.upper() for method in value] if value is not None else None

    @field_validator("source_cidr")
    @classmethod
    def _valid_cidrs(cls, value: list[str] | None) -> list[str] | None:
        for cidr in value or ():
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a valid CIDR network (e.g. 10.0.0.0/8)") from None
        return value

    def model_post_init(self, context: Any) -> None:
        patterns = {name: _glob(getattr(self, name)) for name in PATTERN_FIELDS if getattr(self, name)}
        served = patterns.pop("served_model", None)
        networks = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in self.source_cidr or ())
        self._compiled = CompiledMatch(tuple(patterns.items()), networks, served)

    @property
    def compiled(self) -> CompiledMatch:
        assert self._compiled is not None  # built by model_post_init
        return self._compiled

    def served_pattern(self) -> re.Pattern[str] | None:
        return self.compiled.served

    def mismatch(self, request: PolicyRequest) -> str | None:
        """The first field (other than ``served_model``) this request does not match, or None."""
        return self.compiled.mismatch(request)


@dataclass(frozen=True, slots=True)
class CompiledMatch:
    """A rule's match as it is judged on every governed request: compiled patterns in plain
    attributes (a pydantic private attribute costs a Python-level lookup on every read)."""

    patterns: tuple[tuple[str, re.Pattern[str]], ...]  # every named field but served_model
    networks: tuple[IPNetwork, ...]
    served: re.Pattern[str] | None

    def mismatch(self, request: PolicyRequest) -> str | None:
        """The first field (other than ``served_model``) this request does not match, or None.

        Only the fields the rule names are looked at, and nothing is built per call."""
        for name, pattern in self.patterns:
            if name == "group":
                if not any(pattern.match(group) for group in request.groups):
                    return name
                continue
            value = getattr(request, name)
            if value is None or not pattern.match(value):
                return name
        if self.networks:
            address = request.address
            if address is None or not any(address in network for network in self.networks):
                return "source_cidr"
        return None


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Unique; named in denials, headers and explanations.")
    priority: int = Field(default=100, description="Lower is judged first; ties keep file order.")
    action: Literal["allow", "deny"]
    reason: str | None = Field(default=None, description="Told to the client on a denial.")
    match: RuleMatch = Field(default_factory=RuleMatch)

    @property
    def why(self) -> str:
        return self.reason or f"rule {self.name}"


class PolicyDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """A request as the rules see it: identity from the credential, never from client headers."""

    team: str | None = None
    user: str | None = None
    key_id: str | None = None
    groups: tuple[str, ...] = ()  # the requested model and the group it resolves to
    route: str = "/"  # normalised (no /v1)
    method: str = "POST"
    client_ip: str | None = None

    @property
    def address(self) -> IPAddress | None:
        if not self.client_ip:
            return None
        try:
            return ipaddress.ip_address(self.client_ip)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Target:
    """A deployment a request could be served by: what ``served_model`` rules are judged against."""

    id: str
    group: str
    models: tuple[str, ...]  # e.g. ("openai/gpt-4o", "gpt-4o")
    requested: bool  # in the requested group (False: a fallback group)


@dataclass(frozen=True, slots=True)
class Ruling:
    """What one rule (or the default action) says about a request or a deployment."""

    allowed: bool
    rule: str  # the deciding rule, or DEFAULT_RULE
    reason: str

    @property
    def action(self) -> str:
        return "allow" if self.allowed else "deny"


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Ruling  # for the request as a whole
    deployments: dict[str, Ruling] = field(default_factory=dict)  # per candidate deployment

    @property
    def excluded(self) -> set[str]:
        return {deployment for deployment, decision in self.deployments.items() if not decision.allowed}


class RuleSet:
    """Validated rules in judging order, with where they came from."""

    def __init__(
        self, rules: Sequence[Rule], default_action: str, source: str = "", digest: str = ""
    ) -> None:
        # sorted() is stable: equal priorities keep the order of the file.
        self.rules = sorted(rules, key=lambda rule: rule.priority)
        # What judging reads, per rule in order: the match and the ruling it gives when it decides.
        self._judged = [
            (rule.match.compiled, Ruling(rule.action == "allow", rule.name, rule.why)) for rule in self.rules
        ]
        self.source = source
        self.digest = digest
        self.loaded_at = time.time()
        allowed = default_action == "allow"
        self.default = Ruling(
            allowed, DEFAULT_RULE, f"no rule matched; the default action is {default_action}"
        )

    def judge(self, request: PolicyRequest, targets: Sequence[Target] = ()) -> Verdict:
        """First match by priority, per candidate deployment.

        A rule without ``served_model`` decides every deployment not decided yet (and the request);
        one with it decides only the deployments whose model it matches. The request is denied
        when every deployment of the requested group is (or, with no deployments, by the first
        rule without ``served_model``)."""
        undecided = {target.id: target for target in targets}
        decided: dict[str, Ruling] = {}
        request_level: Ruling | None = None
        for match, decision in self._judged:
            if match.mismatch(request) is not None:
                continue
            served = match.served
            if served is None:
                request_level = decision
                decided.update(dict.fromkeys(undecided, decision))
                undecided.clear()
                break
            for target_id, target in list(undecided.items()):
                if any(served.match(model) for model in target.models):
                    decided[target_id] = decision
                    del undecided[target_id]
            if targets and not undecided:
                break
        decided.update(dict.fromkeys(undecided, self.default))
        requested = [decided[target.id] for target in targets if target.requested]
        if not requested:
            return Verdict(request_level or self.default, decided)
        allowed = next((decision for decision in requested if decision.allowed), None)
        return Verdict(allowed or requested[0], decided)

    def explain(self, request: PolicyRequest, targets: Sequence[Target] = ()) -> dict[str, Any]:
        """The verdict, and for every rule in order whether it matched (and if not, on which field)."""
        verdict = self.judge(request, targets)
        deciding = {verdict.decision.rule, *(decision.rule for decision in verdict.deployments.values())}
        rules = []
        for rule in self.rules:
            mismatch = rule.match.mismatch(request)
            entry: dict[str, Any] = {
                "name": rule.name,
                "priority": rule.priority,
                "action": rule.action,
                "matched": mismatch is None,
                "mismatch": mismatch,
            }
            served = rule.match.served_pattern()
            if served is not None:
                entry["served_model_matches"] = [
                    target.id for target in targets if any(served.match(model) for model in target.models)
                ]
                if mismatch is None and not entry["served_model_matches"]:
                    entry["matched"], entry["mismatch"] = False, "served_model"
            entry["decided"] = rule.name in deciding
            rules.append(entry)
        return {
            "action": verdict.decision.action,
            "rule": verdict.decision.rule,
            "reason": verdict.decision.reason,
            "excluded_deployments": sorted(verdict.excluded),
            "deployments": {
                deployment: {"action": decision.action, "rule": decision.rule}
                for deployment, decision in verdict.deployments.items()
            },
            "rules": rules,
        }


def requested_groups(model: str | None, deployments: DeploymentTable, settings: Settings) -> tuple[str, ...]:
    """The requested model and the group serving it: a profile name (``auto``, ``eco``...) that is
    not a group of its own is served by ``profile_group``, as routing resolves it later (the same
    ``resolve_target``)."""
    if not model:
        return ()
    target = resolve_target(model, deployments, settings.profile_group)
    return groups_of(target.model, target.group)


def groups_of(model: str, group: str | None) -> tuple[str, ...]:
    """The names a rule's ``groups`` may match: the model as asked for, and the group serving it."""
    if group is None or group == model:
        return (model,)
    return (model, group)


def candidate_targets(
    groups: tuple[str, ...], deployments: DeploymentTable, settings: Settings
) -> list[Target]:
    """The deployments that could serve the request: its group's, then its fallback groups'."""
    if not groups:
        return []
    group = groups[-1]
    targets = [_target(deployment, requested=True) for deployment in deployments.group(group)]
    if not targets:
        return []  # unknown group: the API answers 404 after the request-level verdict
    seen = {target.id for target in targets}
    for fallback in settings.fallbacks_for(group):
        for deployment in deployments.group(fallback):
            if deployment.id not in seen:
                seen.add(deployment.id)
                targets.append(_target(deployment, requested=False))
    return targets


def _target(deployment: Deployment, requested: bool) -> Target:
    models = (deployment.litellm_model, deployment.upstream_model)
    return Target(deployment.id, deployment.group, tuple(dict.fromkeys(models)), requested)


def resolve_policy_path(file: str, config_path: str | os.PathLike[str] | None) -> Path:
    """A relative policy file is relative to the config file's directory (else the working directory)."""
    path = Path(file).expanduser()
    if path.is_absolute() or not config_path:
        return path
    return Path(config_path).resolve().parent / path


def parse_rules(text: str, source: str, default_action: str) -> RuleSet:
    """Validate a policy document; every problem names the file, the rule and the field."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PolicyError(f"{source}: not valid YAML: {error}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise PolicyError(f"{source}: the top level must be a mapping with a 'rules' list")
    try:
        parsed = PolicyDocument.model_validate(document)
    except ValidationError as error:
        raise PolicyError(_describe(error, document, source)) from None
    seen: set[str] = set()
    for index, rule in enumerate(parsed.rules):
        if rule.name in seen:
            raise PolicyError(f"{source}: rules[{index}]: duplicate rule name {rule.name!r}")
        seen.add(rule.name)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return RuleSet(parsed.rules, default_action, source, digest)


def read_rules(path: Path, default_action: str) -> RuleSet:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(f"{path}: cannot read the policy file: {error.strerror}") from None
    return parse_rules(text, str(path), default_action)


def _describe(error: ValidationError, document: dict[str, Any], source: str) -> str:
    lines = []
    rules = document.get("rules")
    for item in error.errors():
        loc = list(item["loc"])
        where = ".".join(str(part) for part in loc) or "<top level>"
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            index = loc[1]
            entry = rules[index] if isinstance(rules, list) and index < len(rules) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            rule = f"rule {name!r} (rules[{index}])" if name else f"rules[{index}]"
            where = f"{rule}: {'.'.join(str(part) for part in loc[2:]) or '<rule>'}"
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{where}: {message}")
    return f"{source}: invalid policy:\n  " + "\n  ".join(lines)


class PolicyEngine:
    """The rules in force for this worker, kept current with the file and with the other workers."""

    def __init__(self, settings: PolicySettings, path: Path, changes: LiveChanges) -> None:
        self.settings = settings
        self.path = path
        self._changes = changes
        self._stamp = _stamp(path)
        self.rules = read_rules(path, settings.default_action)  # a bad file stops startup
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        # Not caught up at startup: the file was just read, which is newer than any earlier reload.
        changes.watch(SUBJECT, self._on_change, catch_up=False)

    @property
    def failure_mode(self) -> str:
        return self.settings.failure_mode

    def judge(self, request: PolicyRequest, targets: Sequence[Target] = ()) -> Verdict:
        return self.rules.judge(request, targets)

    async def start(self) -> None:
        if self.settings.reload_interval_seconds > 0:
            self._tasks.append(every(self.settings.reload_interval_seconds, self.check, "policy file check"))

    async def close(self) -> None:
        await stop(self._tasks)
        self._tasks.clear()

    async def reload(self) -> tuple[RuleSet, int | None]:
        """Re-read the file now and tell every other worker to; raises ``PolicyError`` (nothing
        changes) when the file is bad. Returns the rules and the change's version (None: Redis is
        away, so only this worker re-read; the others see the file when they next poll)."""
        rules = await self._load(force=True)
        version = await self._changes.publish(SUBJECT, {"digest": rules.digest}, local_if_unavailable=True)
        return rules, version

    async def check(self) -> None:
        """The periodic look: a new mtime or size leads to a hash, a new hash to a reload."""
        try:
            await self._load(force=False)
        except PolicyError as error:
            logger.error("policy file change refused; the previous rules stay in force: %s", error)

    async def _on_change(self, change: Change) -> None:
        try:
            rules = await self._load(force=True)
        except PolicyError as error:
            raise ChangeRefused(f"this instance's policy file is refused: {error}") from None
        announced = (change.value or {}).get("digest")
        if announced is not None and rules.digest != announced:
            raise ChangeRefused(
                f"policy file {self.path} here has sha256 {rules.digest[:12]}, the reload announced "
                f"{str(announced)[:12]}"
            )

    async def _load(self, force: bool) -> RuleSet:
        async with self._lock:
            stamp = await asyncio.to_thread(_stamp, self.path)
            if not force and stamp == self._stamp:
                return self.rules
            # Seen, good or bad: a bad version is reported once, and the next change is looked at.
            self._stamp = stamp
            try:
                text = await asyncio.to_thread(self.path.read_text, encoding="utf-8")
            except OSError as error:
                raise PolicyError(f"{self.path}: cannot read the policy file: {error.strerror}") from None
            digest = hashlib.sha256(text.encode()).hexdigest()
            if digest == self.rules.digest:
                return self.rules
            rules = parse_rules(text, str(self.path), self.settings.default_action)
            self.rules = rules
            logger.info(
                "policy reloaded from %s: %d rules (sha256 %s)", self.path, len(rules.rules), digest[:12]
            )
            return rules


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def build_policy_engine(settings: PolicySettings, changes: LiveChanges) -> PolicyEngine | None:
    """The engine for ``settings.file`` (relative to the config file named by ``ROUTEIQ_CONFIG``),
    or None when no policy file is configured."""
    if not settings.file:
        return None
    path = resolve_policy_path(settings.file, os.environ.get(CONFIG_PATH_ENV))
    return PolicyEngine(settings, path, changes)


def check_policy_file(settings: PolicySettings, config_path: str | os.PathLike[str] | None) -> RuleSet | None:
    """``routeiq check-config``: the configured file's rules, or ``PolicyError`` saying what is wrong."""
    if not settings.file:
        return None
    return read_rules(resolve_policy_path(settings.file, config_path), settings.default_action)
