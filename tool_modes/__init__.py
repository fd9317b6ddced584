"""Tool modes: one MCP server's tools presented as Standard, Search, Code or CodeSearch.

`tool_modes.modes.build_mode_server(inner, mode)` for an in-process server,
`tool_modes.proxy.proxy_server(Upstream(...), mode)` for any other MCP server. Nothing here
knows about drones: a facade is a function from one tool set to another.
"""
