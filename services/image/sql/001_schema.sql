-- 001_schema: the image schema exists from the first start; its tables arrive with
-- the issues that give the service its API. Applied by db_migrate() under an
-- advisory lock, with search_path = image.
COMMENT ON SCHEMA image IS 'Virga image service';
