"""The backend API's blueprints, one per resource."""
