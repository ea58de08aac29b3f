"""RouteIQ's view of the configured deployments: what a routing decision and the executors need.

LiteLLM keeps its own copy (the Router's registry); both are built from the same ``model_list``
and share deployment ids, so a decision made on one side names the same deployment on the other.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_type_hints

if TYPE_CHECKING:
    from routeiq.settings import DeploymentConfig

DEFAULT_OPENAI_BASE = "https://api.openai.com/v1"

# Provider prefixes whose deployments speak the OpenAI wire format, so the passthrough executor
# can forward their bytes instead of translating through LiteLLM.
OPENAI_WIRE_PROVIDERS = frozenset({"openai", "hosted_vllm", "lm_studio", "llamafile"})

# model_info keys that belong to RouteIQ. LiteLLM validates model_info with its own schema (its
# `tier` means free/paid), so these are taken out before the Router sees them.
ROUTEIQ_MODEL_INFO_KEYS = frozenset({"tier", "responses_api"})


@dataclass(frozen=True, slots=True)
class Deployment:
    id: str
    group: str
    litellm_model: str  # provider/model, as LiteLLM reads it
    upstream_model: str  # the name the upstream knows; what clients see as the served model
    provider: str
    api_base: str | None
    weight: float
    timeout: float | None  # seconds; None means the gateway-wide request timeout
    tier: str | None
    cost_per_token: float | None  # input + output USD per token, when known
    input_cost_per_token: float | None
    output_cost_per_token: float | None
    max_input_tokens: int | None  # context window, when known
    supports_vision: bool | None
    supports_tools: bool | None
    speaks_openai: bool  # can the passthrough executor forward to it?
    upstream_headers: dict[str, str] = field(repr=False)  # credentials live here; never logged
    # Does it speak Anthropic's Messages wire (``anthropic/...``)? Then a Messages call it serves is
    # forwarded as the client's bytes (routeiq.executors.anthropic_wire), not translated.
    speaks_anthropic: bool = False
    # Does it serve OpenAI's Responses API itself? Then a Responses call goes to it as sent.
    speaks_responses: bool = False
    # Does it reason on request (``thinking``/``reasoning_effort``), take PDF file parts? (None: unknown)
    supports_reasoning: bool | None = None
    supports_pdf_input: bool | None = None


def _split_provider(model: str) -> tuple[str, str]:
    provider, sep, name = model.partition("/")
    if not sep:
        return "openai", model  # LiteLLM's reading of a bare model name such as gpt-4o
    return provider, name


def _upstream_headers(params: dict[str, Any], provider: str) -> dict[str, str]:
    # identity: the bytes go to the client as they come, so they must not be compressed
    headers = {"content-type": "application/json", "accept-encoding": "identity"}
    extra = params.get("extra_headers") or {}
    headers.update({str(key).lower(): str(value) for key, value in extra.items()})
    if params.get("api_key") and provider == "anthropic":  # Anthropic's own credential header
        headers["x-api-key"] = str(params["api_key"])
    elif params.get("api_key"):
        headers["authorization"] = f"Bearer {params['api_key']}"
    if params.get("organization"):
        headers["openai-organization"] = str(params["organization"])
    return headers


PRICE_KEYS = ("input_cost_per_token", "output_cost_per_token")
ModelFacts = Callable[[str], dict[str, Any]]  # LiteLLM's model map entry for a model, or {}


def _price(facts: dict[str, Any], key: str) -> float | None:
    value = facts.get(key)
    return float(value) if isinstance(value, int | float) else None


def _cost(facts: dict[str, Any]) -> float | None:
    known = [price for key in PRICE_KEYS if (price := _price(facts, key)) is not None]
    return sum(known) if known else None


def _flag(facts: dict[str, Any], key: str) -> bool | None:
    value = facts.get(key)
    return value if isinstance(value, bool) else None


def usage_cost(deployment: Deployment, usage: dict[str, Any] | None) -> float | None:
    """USD for one call's usage at the deployment's prices (configured, else LiteLLM's map)."""
    if not usage or (deployment.input_cost_per_token is None and deployment.output_cost_per_token is None):
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    return float(prompt) * (deployment.input_cost_per_token or 0.0) + float(completion) * (
        deployment.output_cost_per_token or 0.0
    )


def build_deployment(
    entry: DeploymentConfig, deployment_id: str, model_facts: ModelFacts | None = None
) -> Deployment:
    params = entry.litellm_params.model_dump(exclude_none=True)
    # What the config says wins; LiteLLM's model map fills the gaps.
    facts = {
        **(model_facts(entry.litellm_params.model) if model_facts else {}),
        **entry.model_info.model_dump(exclude_none=True, exclude={"id", "tier"}),
    }
    max_input = facts.get("max_input_tokens")
    provider, upstream_model = _split_provider(entry.litellm_params.model)
    api_base = entry.litellm_params.api_base
    if api_base is None and provider == "openai":
        api_base = DEFAULT_OPENAI_BASE
    speaks_openai = (
        provider in OPENAI_WIRE_PROVIDERS
        and api_base is not None
        and "mock_response" not in params  # LiteLLM answers these itself; nothing to forward to
    )
    return Deployment(
        id=deployment_id,
        group=entry.model_name,
        litellm_model=entry.litellm_params.model,
        upstream_model=upstream_model,
        provider=provider,
        api_base=api_base.rstrip("/") if api_base else None,
        weight=entry.litellm_params.weight,
        timeout=entry.litellm_params.timeout,
        tier=entry.model_info.tier,
        cost_per_token=_cost(facts),
        input_cost_per_token=_price(facts, "input_cost_per_token"),
        output_cost_per_token=_price(facts, "output_cost_per_token"),
        max_input_tokens=int(max_input) if isinstance(max_input, int | float) else None,
        supports_vision=_flag(facts, "supports_vision"),
        supports_tools=_flag(facts, "supports_function_calling"),
        speaks_openai=speaks_openai,
        upstream_headers=_upstream_headers(params, provider),
        speaks_anthropic=provider == "anthropic" and "mock_response" not in params,
        speaks_responses=speaks_openai
        and (
            entry.model_info.responses_api
            if entry.model_info.responses_api is not None
            else api_base == DEFAULT_OPENAI_BASE
        ),
        supports_reasoning=_flag(facts, "supports_reasoning"),
        supports_pdf_input=_flag(facts, "supports_pdf_input"),
    )


def deployment_ids(model_list: Iterable[DeploymentConfig]) -> list[str]:
    """Configured ids, or ``<group>-<n>`` (n counts within the group) where none is given."""
    counts: dict[str, int] = {}
    ids = []
    for entry in model_list:
        counts[entry.model_name] = counts.get(entry.model_name, 0) + 1
        ids.append(entry.model_info.id or f"{entry.model_name}-{counts[entry.model_name]}")
    return ids


def litellm_model_list(model_list: list[DeploymentConfig]) -> list[dict[str, Any]]:
    """The model_list as LiteLLM's Router takes it: RouteIQ's own model_info keys removed, ids set."""
    entries = []
    for entry, deployment_id in zip(model_list, deployment_ids(model_list), strict=True):
        info = entry.model_info.model_dump(exclude_none=True, exclude=set(ROUTEIQ_MODEL_INFO_KEYS))
        info["id"] = deployment_id
        params = entry.litellm_params.model_dump(exclude_none=True)
        entries.append({"model_name": entry.model_name, "litellm_params": params, "model_info": info})
    return entries


class DeploymentTable:
    """Deployments by id and by group, in config order; and the model aliases (``model_aliases``:
    client model ids, such as ``claude-sonnet-4-5``, served by a group or a profile)."""

    def __init__(
        self,
        model_list: list[DeploymentConfig],
        model_facts: ModelFacts | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self._aliases = dict(aliases or {})
        self._by_id: dict[str, Deployment] = {}
        self._by_group: dict[str, list[Deployment]] = {}
        for entry, deployment_id in zip(model_list, deployment_ids(model_list), strict=True):
            deployment = build_deployment(entry, deployment_id, model_facts)
            self._by_id[deployment.id] = deployment
            self._by_group.setdefault(deployment.group, []).append(deployment)

    def get(self, deployment_id: str) -> Deployment | None:
        return self._by_id.get(deployment_id)

    def group(self, name: str) -> list[Deployment]:
        return self._by_group.get(name, [])

    def has_group(self, name: str) -> bool:
        return name in self._by_group

    def alias(self, model: str) -> str | None:
        """The group or profile name an aliased model id stands for, else None."""
        return self._aliases.get(model)

    @property
    def groups(self) -> list[str]:
        return list(self._by_group)

    def __iter__(self) -> Iterator[Deployment]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)


# model_info keys RouteIQ reads (typed in settings.ModelInfo); a near miss of one is an error.
ROUTEIQ_INFO_KEYS = (
    "id",
    "tier",
    "input_cost_per_token",
    "output_cost_per_token",
    "max_input_tokens",
    "supports_vision",
    "supports_function_calling",
    "responses_api",
)
ROUTEIQ_PARAM_KEYS = ("weight",)  # LiteLLM reads it too (weighted shuffle), but does not declare it


@dataclass
class KeyCheck:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def litellm_known_keys() -> tuple[set[str], set[str]]:
    """The ``litellm_params`` and ``model_info`` keys LiteLLM knows. Imports LiteLLM (seconds)."""
    import litellm
    from litellm.types.router import LiteLLM_Params
    from litellm.types.router import ModelInfo as RouterModelInfo
    from litellm.types.utils import ModelInfoBase

    params = set(LiteLLM_Params.model_fields)
    # Whatever else is in litellm_params goes to the call itself as a keyword argument.
    for call in (litellm.completion, litellm.embedding, litellm.text_completion):
        params |= {name for name, p in inspect.signature(call).parameters.items() if p.kind != p.VAR_KEYWORD}
    info = set(RouterModelInfo.model_fields) | set(get_type_hints(ModelInfoBase))
    return params, info


def config_key_problems(
    model_list: list[DeploymentConfig],
    source: str,
    known: tuple[set[str], set[str]] | None = None,
) -> KeyCheck:
    """Keys in ``model_list`` entries that neither RouteIQ nor LiteLLM knows, with "did you mean".

    In ``model_info``, an unknown key close to one RouteIQ reads (``input_cost_per_tokn``) is an
    error: the price or capability would silently not apply. Anything else unknown is a warning,
    since LiteLLM passes extra keys through and newer providers add their own."""
    params_known, info_known = known or litellm_known_keys()
    params_known = params_known | set(ROUTEIQ_PARAM_KEYS)
    info_known = info_known | set(ROUTEIQ_INFO_KEYS)
    check = KeyCheck()
    for index, entry in enumerate(model_list):
        where = f"{source}: model_list.{index}"
        for key in entry.litellm_params.model_extra or {}:
            if key not in params_known:
                check.warnings.append(
                    f"{where}.litellm_params.{key}: not a key LiteLLM knows{_nearest(key, params_known)}"
                )
        for key in entry.model_info.model_extra or {}:
            if key in info_known:
                continue
            ours = _nearest(key, ROUTEIQ_INFO_KEYS)
            if ours:
                check.errors.append(f"{where}.model_info.{key}: unknown key{ours}")
            else:
                check.warnings.append(
                    f"{where}.model_info.{key}: not a key RouteIQ or LiteLLM knows{_nearest(key, info_known)}"
                )
    return check


def _nearest(word: str, choices: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f" (did you mean {matches[0]!r}?)" if matches else ""
