"""Tools the user and the model can call: ``core`` (a tool, its schema, running it in isolation) and ``registry``
(the loaded set, from the built-ins, plugins and MCP servers). Nothing is imported here, so that importing a
submodule stays cheap and plugins can import ``assistant.tools.core`` without loading the registry."""
