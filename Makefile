# Virga build. `make` builds every binary and libvirga-common; `make run` starts a
# whole cloud on this machine; `make test` installs, builds and runs every test.
# Works with gcc and clang (`make CC=clang`); `make asan` is the sanitizer build.

CC       ?= cc
BUILD    ?= build
PKGS     := libpq libcurl jansson yaml-0.1 libsodium libmicrohttpd openssl libxml-2.0 zlib
# librdkafka is built from pinned source into a cache and linked statically
# (deploy/librdkafka/build: Debian's 2.0.2 spins in its main loop, docs/bus.md).
RDKAFKA  := $(shell deploy/librdkafka/build --dir)
OPT      ?= -O2
SAN      ?=
CFLAGS   := -std=gnu11 -Wall -Wextra -Werror -g $(OPT) $(SAN) -D_GNU_SOURCE -pthread \
            -Icommon -isystem $(RDKAFKA)/include $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(EXTRA_CFLAGS)
LDLIBS   := $(RDKAFKA)/lib/librdkafka.a $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lrados -lpthread -lm -ldl
LDFLAGS  := $(SAN) -pthread

SERVICES := identity compute image network objectstore api-gateway accounting
# binary name per service directory (api-gateway builds virga-gateway)
bin_of    = $(if $(filter api-gateway,$(1)),gateway,$(1))

COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(COMMON_SRC))
LIB        := $(BUILD)/lib/libvirga-common.a

SVC_BINS   := $(foreach s,$(SERVICES),$(BUILD)/bin/virga-$(call bin_of,$(s)))
BINS       := $(SVC_BINS) $(BUILD)/bin/virga-agent $(BUILD)/bin/virga-busd $(BUILD)/bin/virga-busctl \
              $(BUILD)/bin/virgadm $(BUILD)/bin/virga-datapath
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
# tests/bench/loadgen.c is the load loop every benchmark program links, not a program.
BENCH_OBJ  := $(BUILD)/obj/tests/bench/loadgen.o
BENCH_SRC  := $(filter-out tests/bench/loadgen.c,$(wildcard tests/bench/*.c))
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.SECONDEXPANSION:
.PHONY: all deps run test unit asan bench clean check-tools
all: $(LIB) $(BINS) $(UNIT_BINS) $(BENCH_BINS)

# Every object may include rdkafka.h: the library is built (once) before any of them.
$(RDKAFKA)/lib/librdkafka.a: deploy/librdkafka/build
	deploy/librdkafka/build > /dev/null

# Keep the objects and generated sources that chained rules make (unit test objects,
# build/gen/*.c): make deleted them after each build, so whenever their binaries were
# out of date (a change in common/ relinks every test) all of them were compiled again
# (seen: 58 compiles, 2.5 minutes, in the make test after a plain make).
.SECONDARY:

$(BUILD)/obj/%.o: %.c | $(RDKAFKA)/lib/librdkafka.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(EXTRA_INC) -MMD -MP -c $< -o $@

# (also remade when librdkafka is, so that every binary is linked again with it)
$(LIB): $(COMMON_OBJ) $(RDKAFKA)/lib/librdkafka.a
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $(filter %.o,$^)

# Migrations are compiled into each binary so a deployed service never looks for
# SQL files on disk: services/<svc>/sql/NNN_name.sql -> $(BUILD)/gen/<svc>_migrations.c
$(BUILD)/gen/%_migrations.c: tools/embed-sql.sh $$(wildcard services/%/sql/*.sql)
	@mkdir -p $(dir $@)
	sh tools/embed-sql.sh $* services/$*/sql > $@.tmp && mv $@.tmp $@

svc_src  = $(wildcard services/$(1)/*.c)
svc_objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(call svc_src,$(1))) $(BUILD)/obj/gen/$(1)_migrations.o

$(BUILD)/obj/gen/%_migrations.o: $(BUILD)/gen/%_migrations.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The web console's files (services/api-gateway/console) are built into the gateway.
CONSOLE_FILES := $(shell find services/api-gateway/console -type f 2>/dev/null)
$(BUILD)/gen/console_assets.c: tools/embed-console.py $(CONSOLE_FILES)
	@mkdir -p $(dir $@)
	/usr/bin/python3 tools/embed-console.py services/api-gateway/console > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/gen/console_assets.o: $(BUILD)/gen/console_assets.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iservices/api-gateway -c $< -o $@
$(BUILD)/bin/virga-gateway: $(BUILD)/obj/gen/console_assets.o

define service_rule
$(BUILD)/bin/virga-$(call bin_of,$(1)): $(call svc_objs,$(1)) $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call service_rule,$(s))))

AGENT_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard services/compute/agent/*.c)) $(BUILD)/obj/gen/agent_migrations.o
$(BUILD)/gen/agent_migrations.c: tools/embed-sql.sh
	@mkdir -p $(dir $@)
	sh tools/embed-sql.sh agent services/compute/agent/sql > $@.tmp && mv $@.tmp $@
# The agent applies its host's network datapath in-process (net_sync.c): it links the
# datapath's objects, defined below.
$(AGENT_OBJ): EXTRA_INC := -Iservices/network/datapath
$(BUILD)/bin/virga-agent: $(AGENT_OBJ) $$(DP_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(DP_LIBS)

# The broker host interposes bind(), so its symbols must be visible to librdkafka.
$(BUILD)/bin/virga-busd: $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard deploy/busd/*.c)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -rdynamic -o $@ $^ $(LDLIBS) -ldl

# Sets up the broker side of a cloud: credentials, topics, ACLs (deploy/busctl).
$(BUILD)/bin/virga-busctl: $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard deploy/busctl/*.c)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/virgadm: $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard cli/*.c)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The network datapath (services/network/datapath): a library of its objects, linked by its
# CLI and by its contract test. It speaks rtnetlink (libmnl) and nftables (libnftables)
# in-process: every binary linking DP_OBJ links DP_LIBS too.
DP_LIBS := $(shell pkg-config --libs libnftables libmnl 2>/dev/null)
DP_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out %/cli.c,$(wildcard services/network/datapath/*.c)))
$(BUILD)/bin/virga-datapath: $(BUILD)/obj/services/network/datapath/cli.o $(DP_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(DP_LIBS)
$(BUILD)/obj/tests/unit/test_datapath.o: EXTRA_INC := -Iservices/network/datapath
$(BUILD)/tests/test_datapath: $(BUILD)/obj/tests/unit/test_datapath.o $(DP_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(DP_LIBS) -lcmocka

# Unit tests of a service's internals link that service's objects (not its main.c).
OS_BACKEND_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard services/objectstore/backend*.c))
$(BUILD)/obj/tests/unit/test_backend_dir.o: EXTRA_INC := -Iservices/objectstore
$(BUILD)/tests/test_backend_dir: $(BUILD)/obj/tests/unit/test_backend_dir.o $(OS_BACKEND_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

OS_CHUNKED_OBJ := $(BUILD)/obj/services/objectstore/s3_chunked.o
$(BUILD)/obj/tests/unit/test_s3_chunked.o: EXTRA_INC := -Iservices/objectstore
$(BUILD)/tests/test_s3_chunked: $(BUILD)/obj/tests/unit/test_s3_chunked.o $(OS_CHUNKED_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

OS_LIFECYCLE_OBJ := $(BUILD)/obj/services/objectstore/lifecycle.o $(BUILD)/obj/services/objectstore/s3_xmlbody.o
$(BUILD)/obj/tests/unit/test_lifecycle.o: EXTRA_INC := -Iservices/objectstore
$(BUILD)/tests/test_lifecycle: $(BUILD)/obj/tests/unit/test_lifecycle.o $(OS_LIFECYCLE_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

NET_PURE_OBJ := $(BUILD)/obj/services/network/cidr.o $(BUILD)/obj/services/network/sg_rule.o
$(BUILD)/obj/tests/unit/test_network.o: EXTRA_INC := -Iservices/network
$(BUILD)/tests/test_network: $(BUILD)/obj/tests/unit/test_network.o $(NET_PURE_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# DescribeInstances' item writer against the former tree builder (tests/lib/instance_tree_ref.h).
COMPUTE_ITEM_OBJ := $(patsubst %,$(BUILD)/obj/services/compute/%.o,instance_json public_address metadata_options)
$(BUILD)/obj/tests/unit/test_instance_json.o: EXTRA_INC := -Iservices/compute -Itests/lib
$(BUILD)/tests/test_instance_json: $(BUILD)/obj/tests/unit/test_instance_json.o $(COMPUTE_ITEM_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# The launch tasks' reuse of image grants (services/compute/launch_grants.c).
$(BUILD)/obj/tests/unit/test_launch_grants.o: EXTRA_INC := -Iservices/compute
$(BUILD)/tests/test_launch_grants: $(BUILD)/obj/tests/unit/test_launch_grants.o \
		$(BUILD)/obj/services/compute/launch_grants.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# RunInstances' network parameters (launch_network.c), with a test double for the network's facts.
$(BUILD)/obj/tests/unit/test_launch_network.o: EXTRA_INC := -Iservices/compute
$(BUILD)/tests/test_launch_network: $(BUILD)/obj/tests/unit/test_launch_network.o \
		$(BUILD)/obj/services/compute/launch_network.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

AGENT_IMAGE_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard services/compute/agent/image_cache.c))
$(BUILD)/obj/tests/unit/test_image_cache.o: EXTRA_INC := -Iservices/compute/agent
$(BUILD)/tests/test_image_cache: $(BUILD)/obj/tests/unit/test_image_cache.o $(AGENT_IMAGE_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# The instance drivers' contract suite and the sync loop's test link the agent's objects
# (not its main.c, its bus handlers nor its network side; only the datapath's way into a
# network namespace, with which the QEMU driver looks for its taps).
AGENT_VM_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out %/main.c %_messages.c %/net_sync.c %/metadata_http.c %/metadata_server.c,$(wildcard services/compute/agent/*.c))) \
                $(BUILD)/obj/services/network/datapath/dp_netns.o
AGENT_TESTS := $(BUILD)/tests/test_vm_drivers $(BUILD)/tests/test_instance_sync $(BUILD)/tests/test_ec2_driver \
               $(BUILD)/tests/test_qemu_nics
$(patsubst $(BUILD)/tests/%,$(BUILD)/obj/tests/unit/%.o,$(AGENT_TESTS)): EXTRA_INC := -Iservices/compute/agent
$(AGENT_TESTS): $(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(AGENT_VM_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# The metadata service's HTTP layer with a test double for compute, and (as root) over the
# linux datapath.
AGENT_MD_OBJ := $(BUILD)/obj/services/compute/agent/metadata_http.o $(BUILD)/obj/services/compute/agent/metadata_server.o
$(BUILD)/obj/tests/unit/test_metadata_http.o: EXTRA_INC := -Iservices/compute/agent -Iservices/network/datapath
$(BUILD)/tests/test_metadata_http: $(BUILD)/obj/tests/unit/test_metadata_http.o $(AGENT_MD_OBJ) $(DP_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(DP_LIBS) -lcmocka

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/obj/tests/bench/vm_drivers.o: EXTRA_INC := -Iservices/compute/agent
$(BUILD)/bench/vm_drivers: $(BUILD)/obj/tests/bench/vm_drivers.o $(AGENT_VM_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# net_fanout applies each simulated host's document with the datapath's fake driver.
$(BUILD)/obj/tests/bench/net_fanout.o: EXTRA_INC := -Iservices/network/datapath
$(BUILD)/bench/net_fanout: $(BUILD)/obj/tests/bench/net_fanout.o $(DP_OBJ) $(BENCH_OBJ) $(LIB)
$(BUILD)/bench/net_fanout: LDLIBS += $(DP_LIBS)

# a DescribeInstances page's text passes: compute's item writer and the gateway's XML
$(BUILD)/obj/tests/bench/describe_page_cost.o: EXTRA_INC := -Iservices/compute
$(BUILD)/bench/describe_page_cost: $(BUILD)/obj/tests/bench/describe_page_cost.o $(COMPUTE_ITEM_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(BENCH_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

deps:
	@sh deploy/install-deps.sh

run: deps
	$(MAKE) all
	deploy/images/build
	deploy/devcloud up --dir var --foreground

unit: all
	@sh tests/run-unit.sh $(BUILD)

test: deps
	$(MAKE) all
	@sh tests/run-all.sh $(BUILD)

# A fresh build-asan every time: objects left by another compiler or other sanitizer
# flags would not link against clang's runtime.
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan:
	rm -rf build-asan
	$(MAKE) BUILD=build-asan CC=clang OPT=-O1 SAN="$(ASAN_FLAGS)" all
	CC=clang OPT=-O1 SAN="$(ASAN_FLAGS)" ASAN_OPTIONS=detect_leaks=1 sh tests/run-all.sh build-asan

bench: deps
	$(MAKE) all
	@sh tests/bench/run.sh $(BUILD)

# `make -s print-CFLAGS` (or any variable): what a script that compiles outside the rules
# needs, so that it links librdkafka and the libraries exactly as the build does
# (tests/objectstore/run-rados-test.sh).
print-%:
	@echo '$($*)'

clean:
	rm -rf build build-asan build-clang

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
