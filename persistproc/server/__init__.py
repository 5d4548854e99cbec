"""The server side: MCP tools and HTTP routes over the supervisor, and the process that serves them."""
