-- 002_vpc: VPCs, subnets, security groups and their rules, network interfaces, elastic
-- IPs and the hosts the datapath runs on. Every resource row names its account; every
-- uniqueness the API promises (one default VPC per account, one address per subnet
-- slot, one public address per allocation) is a constraint here, so concurrent
-- requests cannot break it whatever the handlers do.

-- VNI of a VPC's VXLAN, unique cloud-wide (the datapath's id for the VPC's segment).
CREATE SEQUENCE vni_seq START 1001 MAXVALUE 16777215;

CREATE TABLE vpcs (
    id            text PRIMARY KEY,
    account_id    char(12) NOT NULL,
    cidr          cidr NOT NULL,
    vni           integer NOT NULL UNIQUE DEFAULT nextval('vni_seq'),
    is_default    boolean NOT NULL DEFAULT false,
    dns_support   boolean NOT NULL DEFAULT true,
    dns_hostnames boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vpcs_account ON vpcs (account_id);
-- the default VPC made on first use: two first calls at once make one
CREATE UNIQUE INDEX vpcs_one_default ON vpcs (account_id) WHERE is_default;

CREATE TABLE subnets (
    id           text PRIMARY KEY,
    account_id   char(12) NOT NULL,
    vpc_id       text NOT NULL REFERENCES vpcs (id),
    cidr         cidr NOT NULL,
    az           text NOT NULL,
    is_default   boolean NOT NULL DEFAULT false,
    map_public   boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subnets_vpc ON subnets (vpc_id);
CREATE UNIQUE INDEX subnets_one_default ON subnets (vpc_id, az) WHERE is_default;

CREATE TABLE security_groups (
    id          text PRIMARY KEY,
    account_id  char(12) NOT NULL,
    vpc_id      text NOT NULL REFERENCES vpcs (id),
    name        text NOT NULL,
    description text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (vpc_id, name)
);

-- One normalised rule per row (one protocol, one port range, one source: a CIDR or a
-- group), as DescribeSecurityGroupRules shows them; InvalidPermission.Duplicate is this
-- constraint.
CREATE TABLE sg_rules (
    id          text PRIMARY KEY,
    group_id    text NOT NULL REFERENCES security_groups (id) ON DELETE CASCADE,
    egress      boolean NOT NULL,
    protocol    text NOT NULL,
    from_port   integer NOT NULL,
    to_port     integer NOT NULL,
    cidr        cidr,
    ref_group   text REFERENCES security_groups (id),
    description text NOT NULL DEFAULT '',
    CHECK ((cidr IS NULL) <> (ref_group IS NULL)),
    UNIQUE NULLS NOT DISTINCT (group_id, egress, protocol, from_port, to_port, cidr, ref_group)
);
CREATE INDEX sg_rules_ref ON sg_rules (ref_group);

-- Hosts the datapath runs on: generation grows in the transaction of every change that
-- touches the host, so an agent that saw generation N knows whether it is current.
CREATE TABLE hosts (
    name        text PRIMARY KEY,
    underlay_ip inet NOT NULL UNIQUE,
    generation  bigint NOT NULL DEFAULT 1
);

CREATE TABLE enis (
    id           text PRIMARY KEY,
    account_id   char(12) NOT NULL,
    vpc_id       text NOT NULL REFERENCES vpcs (id),
    subnet_id    text NOT NULL REFERENCES subnets (id),
    ip           inet NOT NULL,
    mac          macaddr NOT NULL UNIQUE,
    description  text NOT NULL DEFAULT '',
    instance_id  text,
    host         text REFERENCES hosts (name),
    plugged      boolean NOT NULL DEFAULT false,
    client_token text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- no address is ever handed out twice in a subnet
    UNIQUE (subnet_id, ip),
    -- a retried port_create for an instance finds its port
    UNIQUE (account_id, client_token)
);
CREATE INDEX enis_host ON enis (host) WHERE plugged;

CREATE TABLE eni_groups (
    eni_id   text NOT NULL REFERENCES enis (id) ON DELETE CASCADE,
    group_id text NOT NULL REFERENCES security_groups (id),
    PRIMARY KEY (eni_id, group_id)
);
CREATE INDEX eni_groups_group ON eni_groups (group_id);

CREATE TABLE addresses (
    id             text PRIMARY KEY,               -- eipalloc-...
    account_id     char(12) NOT NULL,
    public_ip      inet NOT NULL UNIQUE,
    eni_id         text UNIQUE REFERENCES enis (id),
    association_id text UNIQUE,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX addresses_account ON addresses (account_id);

CREATE TABLE tags (
    resource_id text NOT NULL,
    account_id  char(12) NOT NULL,
    key         text NOT NULL,
    value       text NOT NULL,
    PRIMARY KEY (resource_id, key)
);
CREATE INDEX tags_account ON tags (account_id);
