"""Plugins and tools: function tools (prompt tokens), web search (priced per result, even on
free models), the file parser (pinned to its free engine) and the auto router's pin (pure).

Web search runs on Exa only (engine forced): OpenRouter bills Exa per result, so the worst
case is the number of results the call may fetch, which the policy also forces upstream
(`max_results`, and `max_total_results` for the server tool, which may search several times).

Each result is read as prompt tokens: the server tool's `max_characters` is forced upstream
(TOKENLEDGER_WEB_SEARCH_MAX_CHARACTERS; a `search_context_size` that reads more is refused), the
web plugin's adaptive results are reserved at the same size (at least Exa's "low", 5,000
characters). The server tool runs an agent loop, one model call per search: its steps are
forced upstream as `max_tool_calls` and priced in bounds.loop_prompt.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from tokenledger.config import Settings
from tokenledger.policy import values as v
from tokenledger.policy.candidates import AUTO_ROUTER_PLUGIN
from tokenledger.policy.errors import PolicyError, bad

WEB_PLUGIN = "web"
FILE_PARSER_PLUGIN = "file-parser"
WEB_SERVER_TOOL = "openrouter:web_search"
FREE_PDF_ENGINE = "pdf-text"
WEB_ENGINE = "exa"
MAX_TOOLS = 128
MAX_PLUGINS = 4
WEB_TOOL_PARAMETERS = {"engine", "max_results", "max_total_results", "search_context_size",
                       "allowed_domains", "excluded_domains", "max_characters"}
CONTEXT_SIZE_CHARS = {"low": 5000, "medium": 15000, "high": 30000}  # Exa, characters per result
PLUGIN_RESULT_CHARS = 5000  # the plugin's adaptive results: typically 2,000-4,000 characters
RESULT_FRAME_TOKENS = 200  # a result's title and URL


@dataclass
class ServerTools:
    web_results: int = 0  # search results the call may be billed for
    web_searches: int = 0  # searches it may run (each adds its framing prompt)
    result_tokens: int = 0  # prompt tokens of the plugin's results (read by the one call)
    loop_result_tokens: int = 0  # prompt tokens of the server tool's results (read by later calls)
    loop_steps: int = 0  # server-tool searches, each followed by one more model call
    plugins: list = field(default_factory=list)  # upstream plugins (auto-router added by plan.py)
    tools: list | None = None  # upstream tools

    def web_cost(self, settings: Settings) -> Decimal:
        return self.web_results * settings.web_search_max_price / max(settings.web_search_max_results, 1)


def _web_disabled(field_name: str) -> PolicyError:
    return PolicyError(400, "web_search_disabled",
                       f"{field_name}: web search is not enabled for this app (TOKENLEDGER_ALLOW_WEB_SEARCH).",
                       field_name)


def _results(field_name: str, value: object, default: int, cap: int) -> int:
    if value is None:
        return min(default, cap)
    return min(v.integer(field_name, value, 1, 100), cap)


def web_plugin(plugin: dict, settings: Settings) -> dict:
    v.obj("plugins.web", plugin, {"id", "max_results", "search_prompt", "engine"})
    if not settings.allow_web_search:
        raise _web_disabled("plugins.web")
    if plugin.get("engine") not in (None, WEB_ENGINE):
        raise bad("plugins.web.engine", f"only '{WEB_ENGINE}' is allowed (its price per result is known)")
    out = {"id": WEB_PLUGIN, "engine": WEB_ENGINE,
           "max_results": _results("plugins.web.max_results", plugin.get("max_results"),
                                   5, settings.web_search_max_results)}
    if plugin.get("search_prompt") is not None:
        out["search_prompt"] = v.string("plugins.web.search_prompt", plugin["search_prompt"], 2000)
    return out


def plugins(value: object, settings: Settings, online: bool, files: int) -> ServerTools:
    result = ServerTools()
    items = [] if value is None else v.array("plugins", value, MAX_PLUGINS)
    seen = set()
    for i, plugin in enumerate(items):
        if not isinstance(plugin, dict) or not isinstance(plugin.get("id"), str):
            raise bad(f"plugins[{i}]", "must be an object with an id")
        pid = plugin["id"]
        if pid in seen:
            raise bad(f"plugins[{i}]", f"plugin '{pid}' is listed twice")
        seen.add(pid)
        if pid == WEB_PLUGIN:
            add_plugin_search(result, web_plugin(plugin, settings), settings)
        elif pid == FILE_PARSER_PLUGIN:
            v.obj("plugins.file-parser", plugin, {"id", "pdf"})
            engine = (plugin.get("pdf") or {}).get("engine") if isinstance(plugin.get("pdf"), dict) else None
            if engine not in (None, FREE_PDF_ENGINE):
                raise bad("plugins.file-parser.pdf.engine", f"only '{FREE_PDF_ENGINE}' (free) is allowed")
        elif pid == AUTO_ROUTER_PLUGIN:
            v.obj("plugins.auto-router", plugin, {"id", "allowed_models"})  # pool: candidates.py
        else:
            raise bad(f"plugins[{i}].id", f"plugin '{pid[:40]}' is not supported (supported: web, file-parser, "
                      "auto-router)", "unsupported_field")
    if online and WEB_PLUGIN not in seen:
        if not settings.allow_web_search:
            raise _web_disabled("model (:online)")
        add_plugin_search(result, web_plugin({"id": WEB_PLUGIN}, settings), settings)
    if files:
        # OpenRouter's default PDF engine may be a paid OCR; the free text engine is pinned.
        result.plugins.append({"id": FILE_PARSER_PLUGIN, "pdf": {"engine": FREE_PDF_ENGINE}})
    return result


def add_plugin_search(result: ServerTools, web: dict, settings: Settings) -> None:
    result.plugins.append(web)
    result.web_results += web["max_results"]
    result.web_searches += 1
    chars = max(settings.web_search_max_characters, PLUGIN_RESULT_CHARS)
    result.result_tokens += web["max_results"] * (chars + RESULT_FRAME_TOKENS)


def _characters(name: str, params: dict, settings: Settings) -> int:
    """Characters per result forced upstream as max_characters (Exa caps each result at it)."""
    cap = settings.web_search_max_characters
    size = params.get("search_context_size")
    if size is not None:
        v.string(f"{name}.search_context_size", size, 10, tuple(CONTEXT_SIZE_CHARS))
        if CONTEXT_SIZE_CHARS[size] > cap:
            raise bad(f"{name}.search_context_size", f"'{size}' reads up to {CONTEXT_SIZE_CHARS[size]:,} characters a "
                      f"result; this app allows {cap:,} (TOKENLEDGER_WEB_SEARCH_MAX_CHARACTERS)", "invalid_parameter")
    if params.get("max_characters") is None:
        return cap
    return v.integer(f"{name}.max_characters", params["max_characters"], 1, cap)


def _domains(name: str, params: dict) -> None:
    for key in ("allowed_domains", "excluded_domains"):
        if params.get(key) is not None:
            for j, domain in enumerate(v.array(f"{name}.{key}", params[key], 50)):
                v.string(f"{name}.{key}[{j}]", domain, 200)


def web_tool(i: int, tool: dict, settings: Settings) -> tuple[dict, int, int, int]:
    """(upstream tool, results, searches, characters per result) for the web search server tool.
    Searches are at most TOKENLEDGER_WEB_SEARCH_MAX_SEARCHES (forced as max_tool_calls): a search
    that finds nothing (allowed_domains) still costs its model call."""
    name = f"tools[{i}]"
    v.obj(name, tool, {"type", "parameters"})
    if not settings.allow_web_search:
        raise _web_disabled(name)
    params = v.obj(f"{name}.parameters", tool.get("parameters") or {}, WEB_TOOL_PARAMETERS)
    if params.get("engine") not in (None, WEB_ENGINE):
        raise bad(f"{name}.parameters.engine", f"only '{WEB_ENGINE}' is allowed (its price per result is known)")
    chars = _characters(f"{name}.parameters", params, settings)
    _domains(f"{name}.parameters", params)
    per_search = _results(f"{name}.parameters.max_results", params.get("max_results"), 5,
                          settings.web_search_max_results)
    cap = per_search * settings.web_search_max_searches
    total = _results(f"{name}.parameters.max_total_results", params.get("max_total_results"), cap, cap)
    upstream = {**params, "engine": WEB_ENGINE, "max_results": per_search, "max_total_results": total,
                "max_characters": chars}
    return {"type": WEB_SERVER_TOOL, "parameters": upstream}, total, settings.web_search_max_searches, chars


def function_tool(i: int, tool: dict) -> dict:
    name = f"tools[{i}]"
    v.obj(name, tool, {"type", "function"})
    function = v.obj(f"{name}.function", tool.get("function"), {"name", "description", "parameters", "strict"})
    v.string(f"{name}.function.name", function.get("name"), 64)
    if "parameters" in function and not isinstance(function["parameters"], dict):
        raise bad(f"{name}.function.parameters", "must be an object (a JSON schema)")
    return tool


def tools(value: object, settings: Settings, result: ServerTools) -> None:
    if value is None:
        return
    upstream = []
    for i, tool in enumerate(v.array("tools", value, MAX_TOOLS)):
        if not isinstance(tool, dict):
            raise bad(f"tools[{i}]", "must be an object")
        kind = tool.get("type")
        if kind == "function":
            upstream.append(function_tool(i, tool))
        elif kind == WEB_SERVER_TOOL:
            if result.loop_steps:
                raise bad(f"tools[{i}]", f"'{WEB_SERVER_TOOL}' is listed twice")
            tool_out, results, searches, chars = web_tool(i, tool, settings)
            upstream.append(tool_out)
            result.web_results += results
            result.web_searches += searches
            result.loop_result_tokens += results * (chars + RESULT_FRAME_TOKENS)
            result.loop_steps = searches
        else:
            raise bad(f"tools[{i}].type", f"must be 'function' or '{WEB_SERVER_TOOL}'", "unsupported_field")
    result.tools = upstream
