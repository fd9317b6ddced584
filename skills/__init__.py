"""The suite's agent skills, shipped as package data: `skills/<name>/SKILL.md` + `prompts/*.md`.

A package only so that the files travel inside the wheel (and any image built from it);
`servers.skills` reads them through `importlib.resources`.
"""
