"""The HTTP edge: the typed operation registry, parameter parsing, errors, conventions, OpenAPI."""
