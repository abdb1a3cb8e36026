-- 003_routing: internet gateways and route tables. Every VPC has one main route table
-- (the partial unique index) holding the VPC's local route; a subnet is associated with
-- at most one table (UNIQUE subnet_id), else it uses the main one; an internet gateway
-- is attached to at most one VPC and a VPC has at most one (UNIQUE vpc_id).
CREATE TABLE internet_gateways (
    id         text PRIMARY KEY,
    account_id char(12) NOT NULL,
    vpc_id     text UNIQUE REFERENCES vpcs (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX internet_gateways_account ON internet_gateways (account_id);

CREATE TABLE route_tables (
    id         text PRIMARY KEY,
    account_id char(12) NOT NULL,
    vpc_id     text NOT NULL REFERENCES vpcs (id),
    is_main    boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX route_tables_vpc ON route_tables (vpc_id);
CREATE UNIQUE INDEX route_tables_one_main ON route_tables (vpc_id) WHERE is_main;

-- target: 'local' (the VPC's own block) or an internet gateway id
CREATE TABLE routes (
    route_table_id text NOT NULL REFERENCES route_tables (id) ON DELETE CASCADE,
    destination    cidr NOT NULL,
    target         text NOT NULL,
    origin         text NOT NULL DEFAULT 'CreateRoute',
    PRIMARY KEY (route_table_id, destination)
);

CREATE TABLE route_table_assocs (
    id             text PRIMARY KEY,
    route_table_id text NOT NULL REFERENCES route_tables (id),
    subnet_id      text NOT NULL UNIQUE REFERENCES subnets (id) ON DELETE CASCADE
);
CREATE INDEX route_table_assocs_table ON route_table_assocs (route_table_id);

-- VPCs made before this migration get their main table and local route
INSERT INTO route_tables (id, account_id, vpc_id, is_main)
    SELECT 'rtb-' || substr(md5(random()::text || id), 1, 17), account_id, id, true FROM vpcs;
INSERT INTO routes (route_table_id, destination, target, origin)
    SELECT t.id, v.cidr, 'local', 'CreateRouteTable' FROM route_tables t JOIN vpcs v ON v.id = t.vpc_id;
