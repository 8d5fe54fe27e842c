"""HTTP plumbing shared by the blueprints (the OpenAPI document, its documentation pages)."""
