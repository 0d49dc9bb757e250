"""The shared backend: a FastAPI app over SQLAlchemy. Stateless apart from its database, so a
team can run several processes against one PostgreSQL."""
