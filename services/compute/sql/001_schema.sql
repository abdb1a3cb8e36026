-- 001_schema: the compute schema exists from the first start; its tables arrive with
-- the issues that give the service its API. Applied by db_migrate() under an
-- advisory lock, with search_path = compute.
COMMENT ON SCHEMA compute IS 'Virga compute service';
