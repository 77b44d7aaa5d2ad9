"""The frontend's blueprints."""
