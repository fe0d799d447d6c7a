-- The Feast SQL registry (and, later, the decision log) for the redis profile.
-- psql -h <host> -U postgres -f infra/postgres/create_registry.sql
CREATE ROLE tailor LOGIN PASSWORD 'change-me';
CREATE DATABASE tailor OWNER tailor;
-- Then: TAILOR_SERVERS__REGISTRY_URL=postgresql+psycopg://tailor:change-me@<host>:5432/tailor
-- Feast creates its tables on the first `tailor apply`.
