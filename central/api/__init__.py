"""The regulator REST API and web pages: thin handlers over the domain stores."""
