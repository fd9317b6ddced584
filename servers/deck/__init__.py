"""The flight deck: a live web page (and MCP App) for the person watching the drone.

`hub` computes one snapshot of everything the page shows per change and fans it out to the
viewers' streams; `routes` serves the page, its event stream and the operator's controls;
`static/` is the page itself (plain HTML, CSS and JavaScript, nothing fetched from outside).
"""
