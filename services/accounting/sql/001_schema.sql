-- 001_schema: the accounting schema exists from the first start; its tables arrive with
-- the issues that give the service its API. Applied by db_migrate() under an
-- advisory lock, with search_path = accounting.
COMMENT ON SCHEMA accounting IS 'Virga accounting service';
