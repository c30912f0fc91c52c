-- Runs once when the compose PostgreSQL volume is created: the application role with a
-- password. `gatehouse migrate up` keeps an existing role and grants it what it needs
-- (never BYPASSRLS, never ownership).
CREATE ROLE gatehouse_app LOGIN PASSWORD 'app-local-only';
