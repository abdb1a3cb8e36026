"""Real guests end to end (issue 11, docs/compute.md "Proven end to end"), with Debian's
boto3 on a devcloud whose agent runs the real `container` and `qemu` drivers on the linux
datapath (the default drivers; TCG when there is no KVM). What a tenant sees:

- a container of the default busybox rootfs image, launched with a key pair and a user-data
  script, reaches `running`; its console (GetConsoleOutput) shows the guest's ready line with
  its own instance id and the private IP DescribeInstances shows (so the guest read the
  metadata service through its VPC's router and has the address from IPAM), the output of
  its user-data, the key pair's public key installed and the public address the default
  subnet gave it (DescribeInstances' PublicIpAddress, read from meta-data/public-ipv4),
  which the outside world's namespace reaches (ping, its group allowing ICMP), and its tag
  (InstanceMetadataTags on: meta-data/tags/instance/Name); stop/start brings it back
  running with the same private IP and a new public address (the old one went back to the
  pool at the stop, as on AWS), which its user-data reads again at that boot; terminate leaves nothing on the host (no process, no stand-in
  namespace of its interface, no cgroup);
- the same with a QEMU guest of the default machine image (virga-tiny): DHCP on its tap
  gives it the address from IPAM, and metadata reaches it; when its tap is deleted (what
  the datapath does to an interface it rebuilds) the agent boots it again on the tap the
  datapath made anew, and it is `running` from the API's view throughout; an interface
  attached while it runs is plugged in (the guest sees its MAC and gets its address by
  DHCP) and taken out again at its detach, without a reboot.
- a container launched with an existing interface as its primary has that interface's MAC
  and address on eth0; terminated, the interface is available again and leaves nothing on
  the host.

Needs root (namespaces, cgroups, taps). Waits are bounded generously (TCG boots on a loaded
machine can take tens of seconds); nothing asserts a duration."""
import json
import os
import subprocess
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from harness import boto3_client, new_tenant
from host_guests import wait_gone

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="real guests need root")

BOOT_S = 240
MD = "http://169.254.169.254/latest"


@pytest.fixture(scope="module")
def cloud(real_cloud):
    """The real-guest cloud shared with test_create_image (tests/conftest.py), whose agent
    keeps its metadata cache long, so that an answer it must drop (a public address
    changed, an address given to another instance) is proven dropped. This module's
    tenant and instances are its own."""
    return real_cloud


@pytest.fixture(scope="module")
def images(cloud):
    return cloud.default_images()


@pytest.fixture(scope="module")
def tenant(cloud):
    _, k, s = new_tenant(cloud, "real-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    kp = ec2.create_key_pair(KeyName="real-key", KeyType="ed25519")
    pub = subprocess.run(["ssh-keygen", "-y", "-f", "/dev/stdin"], input=kp["KeyMaterial"],
                         capture_output=True, text=True, check=True).stdout.split()
    return ec2, pub


def describe(ec2, iid):
    (r,) = ec2.describe_instances(InstanceIds=[iid])["Reservations"]
    (i,) = r["Instances"]
    return i


def wait_state(ec2, iid, state, seconds=BOOT_S):
    deadline = time.time() + seconds
    while True:
        i = describe(ec2, iid)
        if i["State"]["Name"] == state:
            return i
        assert time.time() < deadline, "%s not %s: %s %s" % (iid, state, i["State"], i.get("StateReason"))
        time.sleep(0.5)


def wait_console(ec2, iid, needles, seconds=BOOT_S, first_boot=False):
    """Poll GetConsoleOutput until every needle is in the text; returns the text."""
    deadline = time.time() + seconds
    text = ""
    while True:
        # botocore decodes the base64 of Output (as the aws CLI does)
        text = ec2.get_console_output(InstanceId=iid, Latest=True).get("Output") or ""
        if text and all(n in text for n in needles):
            return text
        # the ready line is the guest's last word on its first boot: what is missing then
        # will not come
        assert time.time() < deadline and not (first_boot and "VIRGA-GUEST-READY" in text), "console of %s lacks %r:\n%s" % (
            iid, [n for n in needles if n not in text], text[-3000:])
        time.sleep(1)


def launch_and_prove(ec2, pub, ami, **kw):
    token = uuid.uuid4().hex[:12]
    r = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1, KeyName="real-key",
                          UserData="#!/bin/sh\necho user-data-ran-%s\ncat /root/.ssh/authorized_keys\n"
                                   "echo public-ipv4=$(wget -q -O - %s/meta-data/public-ipv4)\n"
                                   "echo tag-Name=$(wget -q -O - %s/meta-data/tags/instance/Name)\n" % (token, MD, MD),
                          **kw)
    iid = r["Instances"][0]["InstanceId"]
    inst = wait_state(ec2, iid, "running")
    ip = inst["PrivateIpAddress"]
    # a default subnet's instance has a public address from the pool (a push away from
    # running at most), which the guest reads from the metadata service
    deadline = time.time() + 10
    while "PublicIpAddress" not in inst and time.time() < deadline:
        time.sleep(0.2)
        inst = describe(ec2, iid)
    assert inst.get("PublicIpAddress"), inst.get("NetworkInterfaces")
    ready = "VIRGA-GUEST-READY instance-id=%s addr=%s" % (iid, ip)
    text = wait_console(ec2, iid, [ready, "user-data-ran-" + token, "ssh key installed",
                                   "public-ipv4=" + inst["PublicIpAddress"]], first_boot=True)
    # the user-data (run after the init installed the key from the metadata service)
    # prints /root/.ssh/authorized_keys: it holds the key pair's public key
    assert pub[1] in text, "the key pair's public key is not on the console:\n" + text[-3000:]
    return iid, ip, inst


def test_container_boots_reads_metadata_stops_starts_terminates(cloud, images, tenant):
    ec2, pub = tenant
    name = "web-" + uuid.uuid4().hex[:6]
    iid, ip, inst = launch_and_prove(ec2, pub, images["virga-busybox-rootfs"],
                                     MetadataOptions={"InstanceMetadataTags": "enabled"},
                                     TagSpecifications=[{"ResourceType": "instance",
                                                         "Tags": [{"Key": "Name", "Value": name}]}])
    wait_console(ec2, iid, ["tag-Name=" + name])
    eni = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
    assert any(eni in n for n in os.listdir("/run/netns")), "no stand-in namespace for " + eni
    # its public address (the default subnet's, from the pool) is NATed as an elastic IP
    # is: reachable from the outside world's namespace once its group lets ICMP in
    ec2.authorize_security_group_ingress(GroupId=inst["SecurityGroups"][0]["GroupId"], IpPermissions=[
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    outside = "virga-d%d-outside" % cloud.base
    assert any(subprocess.run(["ip", "netns", "exec", outside, "busybox", "ping", "-c", "1", "-W", "2",
                               inst["PublicIpAddress"]], capture_output=True, timeout=30).returncode == 0
               for _ in range(10)), "%s not reachable from %s" % (inst["PublicIpAddress"], outside)

    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    ec2.start_instances(InstanceIds=[iid])
    again = wait_state(ec2, iid, "running")
    assert again["PrivateIpAddress"] == ip
    # a new public address (a push away from running at most), read by the guest at boot
    deadline = time.time() + 10
    while again.get("PublicIpAddress") in (None, inst["PublicIpAddress"]) and time.time() < deadline:
        time.sleep(0.2)
        again = describe(ec2, iid)
    assert again.get("PublicIpAddress") not in (None, inst["PublicIpAddress"]), again.get("PublicIpAddress")
    wait_console(ec2, iid, ["public-ipv4=" + again["PublicIpAddress"]])
    # the guest booted again with the same address: the console (appended to across
    # boots) shows a second ready line
    ready = "VIRGA-GUEST-READY instance-id=%s addr=%s" % (iid, ip)
    deadline = time.time() + BOOT_S
    while True:
        text = wait_console(ec2, iid, [ready])
        if text.count(ready) >= 2:
            break
        assert time.time() < deadline, "no second ready line after the start:\n" + text[-3000:]
        time.sleep(1)

    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    wait_gone(cloud, {iid: eni})


def test_an_address_given_again_answers_for_its_new_instance(cloud, images, tenant):
    """A container terminated and a new one launched at once at its private address: the
    new guest's metadata is its own (its instance id on its ready line, its user-data
    run), not what the agent's metadata cache held for the terminated one (it kept
    compute's answers per address for agent.metadata_cache_s, so the new guest read the
    old instance's id and user-data: another instance's secrets)."""
    ec2, _ = tenant
    (subnet,) = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][:1]
    net = subnet["CidrBlock"].split("/")[0].rsplit(".", 2)[0]
    ip = "%s.15.201" % net   # in the default /20, far from the addresses IPAM hands out first
    seen = []
    for n in range(2):
        token = uuid.uuid4().hex[:12]
        deadline = time.time() + 60
        while True:   # the terminated one's port goes with its cleanup task, just after
            try:
                iid = ec2.run_instances(ImageId=images["virga-busybox-rootfs"], InstanceType="t3.nano", MinCount=1,
                                        MaxCount=1, UserData="#!/bin/sh\necho user-data-%s\n" % token,
                                        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet["SubnetId"],
                                                            "PrivateIpAddress": ip}])["Instances"][0]["InstanceId"]
                break
            except ClientError as err:
                assert err.response["Error"]["Code"] == "InvalidIPAddress.InUse" and time.time() < deadline, err
                time.sleep(0.2)
        wait_state(ec2, iid, "running")
        text = wait_console(ec2, iid, ["VIRGA-GUEST-READY instance-id=%s addr=%s" % (iid, ip), "user-data-" + token],
                            first_boot=True)
        assert "user-data-" + seen[0][1] not in text if seen else True, text
        seen.append((iid, token))
        ec2.terminate_instances(InstanceIds=[iid])
        wait_state(ec2, iid, "terminated")


def two_interface_launch(ec2, ami, dhcp_eth1, primary_ip, cidr, existing_primary=False):
    """An instance of ami launched with NetworkInterfaces DeviceIndex 0 (primary_ip in
    the default subnet: not an address an instance of this module had just before, whose
    metadata the agent may still hold for agent.metadata_cache_s) and 1 (in cidr, a second
    subnet of the default VPC, in the same zone) whose user-data prints what the guest's
    own `ip` shows and the metadata's network/interfaces/macs/ listing; checked against
    DescribeInstances. Terminated, the second interface (DeleteOnTermination, the default
    for a new one) is deleted with the instance. existing_primary: the primary is an
    interface made before (CreateNetworkInterface at primary_ip), which the guest has as
    eth0 with its MAC, and which is available again after. Returns the instance's id and
    its primary's."""
    (first,) = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][:1]
    second = ec2.create_subnet(VpcId=first["VpcId"], CidrBlock=cidr,
                               AvailabilityZone=first["AvailabilityZone"])["Subnet"]["SubnetId"]
    token = uuid.uuid4().hex[:12]
    # a container's eth1 comes into its namespace from the datapath, maybe after the boot;
    # a QEMU guest's is there at boot (a second tap), and its init asks DHCP on eth0 only
    up = ("ip link set eth1 up\nudhcpc -i eth1 -n -q -t 5 -s /etc/udhcpc.script\n" if dhcp_eth1 else "")
    ud = ("#!/bin/sh\n%sn=0\nwhile ! ip -o -4 addr show dev eth1 2>/dev/null | grep -q inet && [ $n -lt 120 ]; do "
          "sleep 1; n=$((n+1)); done\n"
          "echo \"nics-%s: $(ip -o -4 addr show | awk '{print $2 \"=\" $4}' | tr '\\n' ' ')\"\n"
          "echo \"macs-%s: $(wget -q -O - %s/meta-data/network/interfaces/macs/ | tr '\\n' ' ')\"\n"
          % (up, token, token, MD))
    primary = {"DeviceIndex": 0, "SubnetId": first["SubnetId"], "PrivateIpAddress": primary_ip}
    if existing_primary:
        made = ec2.create_network_interface(SubnetId=first["SubnetId"], PrivateIpAddress=primary_ip)
        primary = {"DeviceIndex": 0, "NetworkInterfaceId": made["NetworkInterface"]["NetworkInterfaceId"]}
    r = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1, UserData=ud,
                          NetworkInterfaces=[primary, {"DeviceIndex": 1, "SubnetId": second}])
    iid = r["Instances"][0]["InstanceId"]
    inst = wait_state(ec2, iid, "running")
    deadline = time.time() + 10
    while len(inst.get("NetworkInterfaces", [])) < 2 and time.time() < deadline:
        time.sleep(0.2)
        inst = describe(ec2, iid)
    eth0, eth1 = sorted(inst["NetworkInterfaces"], key=lambda f: f["Attachment"]["DeviceIndex"])
    text = wait_console(ec2, iid, ["macs-" + token])
    nics = text.split("nics-%s:" % token)[1].split("\n")[0]
    assert eth0["PrivateIpAddress"] == primary_ip
    assert eth0["NetworkInterfaceId"] == primary.get("NetworkInterfaceId", eth0["NetworkInterfaceId"]), eth0
    assert "eth0=%s/" % eth0["PrivateIpAddress"] in nics and "eth1=%s/24" % eth1["PrivateIpAddress"] in nics, nics
    macs = text.split("macs-%s:" % token)[1].split("\n")[0].split()
    assert sorted(macs) == sorted([eth0["MacAddress"] + "/", eth1["MacAddress"] + "/"]), macs
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    deadline = time.time() + 30
    while time.time() < deadline:
        left = ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [second]}])["NetworkInterfaces"]
        if not left:
            break
        time.sleep(0.5)
    assert not left, left
    ec2.delete_subnet(SubnetId=second)
    if existing_primary:   # given back, available with its address
        n = ec2.describe_network_interfaces(NetworkInterfaceIds=[eth0["NetworkInterfaceId"]])["NetworkInterfaces"][0]
        assert n["Status"] == "available" and n["PrivateIpAddress"] == primary_ip, n
        ec2.delete_network_interface(NetworkInterfaceId=eth0["NetworkInterfaceId"])
    return iid, eth0["NetworkInterfaceId"]


def test_container_launched_with_two_interfaces_sees_eth0_and_eth1(cloud, images, tenant):
    iid, eni = two_interface_launch(tenant[0], images["virga-busybox-rootfs"], False, "172.31.0.201",
                                    "172.31.251.0/24")
    wait_gone(cloud, {iid: eni})


def test_container_with_an_existing_interface_as_its_primary(cloud, images, tenant):
    """An existing interface given as the primary at launch (DeviceIndex 0): the guest's
    eth0 has its MAC and address (and reads its metadata through it: the ready line);
    terminated, the interface is available again and nothing of it is left on the host."""
    ec2, _ = tenant
    (subnet,) = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][:1]
    eni = ec2.create_network_interface(SubnetId=subnet["SubnetId"], PrivateIpAddress="172.31.0.203")[
        "NetworkInterface"]
    token = uuid.uuid4().hex[:12]
    ud = ("#!/bin/sh\necho \"eth0-%s: $(ip -o link show dev eth0 | sed 's/.*link.ether \\([^ ]*\\).*/\\1/') "
          "$(ip -o -4 addr show dev eth0 | awk '{print $4}')\"\n" % token)
    iid = ec2.run_instances(ImageId=images["virga-busybox-rootfs"], InstanceType="t3.nano", MinCount=1, MaxCount=1,
                            UserData=ud, NetworkInterfaces=[{"DeviceIndex": 0, "NetworkInterfaceId":
                                                             eni["NetworkInterfaceId"]}])["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    text = wait_console(ec2, iid, ["VIRGA-GUEST-READY instance-id=%s addr=172.31.0.203" % iid, "eth0-" + token],
                        first_boot=True)
    assert "eth0-%s: %s 172.31.0.203/" % (token, eni["MacAddress"]) in text, text[-2000:]
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    n = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni["NetworkInterfaceId"]])["NetworkInterfaces"][0]
    assert n["Status"] == "available" and n["PrivateIpAddress"] == "172.31.0.203", n
    wait_gone(cloud, {iid: eni["NetworkInterfaceId"]})
    ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])


def test_qemu_guest_launched_with_two_interfaces_has_both_at_boot(cloud, images, tenant):
    """An interface given at launch is a second tap a QEMU guest opens at its start, so
    it boots with eth0 and eth1, which DHCP on the VPC's router addresses as IPAM did.
    Its primary is an existing interface (DeviceIndex 0 with its id): eth0 has that
    interface's MAC and address (the container's case: the test above this one)."""
    two_interface_launch(tenant[0], images["virga-tiny"], True, "172.31.0.202", "172.31.252.0/24",
                         existing_primary=True)


def tap_of(cloud, eni):
    """(host namespace, device) of a QEMU guest's tap: the datapath labels it eni=<id>."""
    host_ns = next(n for n in os.listdir("/run/netns") if n.startswith("virga-d%d-h-" % cloud.base))
    links = json.loads(subprocess.run(["ip", "netns", "exec", host_ns, "ip", "-j", "link", "show"], check=True,
                                      capture_output=True, text=True).stdout)
    (dev,) = [x["ifname"] for x in links if x.get("ifalias", "").startswith("eni=%s " % eni)]
    return host_ns, dev


def test_qemu_guest_gets_dhcp_address_metadata_and_terminates(cloud, images, tenant):
    ec2, pub = tenant
    iid, ip, inst = launch_and_prove(ec2, pub, images["virga-tiny"])
    eni = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]

    # The tap deleted under the running guest (the datapath deletes an interface it
    # rebuilds): QEMU keeps a descriptor on a device that is gone, so the guest is cut off
    # until the agent boots it again on the tap made anew. It gets its address and its
    # metadata again (a second ready line), and the API shows it running throughout.
    host_ns, tap = tap_of(cloud, eni)
    subprocess.run(["ip", "netns", "exec", host_ns, "ip", "link", "del", tap], check=True)
    ready = "VIRGA-GUEST-READY instance-id=%s addr=%s" % (iid, ip)
    deadline = time.time() + BOOT_S
    seen = set()
    while True:
        seen.add(describe(ec2, iid)["State"]["Name"])
        text = ec2.get_console_output(InstanceId=iid, Latest=True).get("Output") or ""
        if text.count(ready) >= 2:
            break
        assert time.time() < deadline, "no second boot of %s on its new tap:\n%s" % (iid, text[-3000:])
        time.sleep(1)
    assert seen == {"running"}, seen
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    wait_gone(cloud, {iid: eni})


def test_qemu_guest_takes_an_interface_while_it_runs_and_gives_it_back(cloud, images, tenant):
    """AttachNetworkInterface to a running QEMU guest: its agent plugs the interface's tap
    in over QMP, and the guest sees a new NIC with the interface's MAC, on which DHCP
    gives the interface's address; DetachNetworkInterface takes it out again. Then a new
    interface with the same address (another MAC) is plugged in: DHCP gives it the
    address, though the first one's lease had an hour to run (the VPC's dnsmasq would
    refuse an address leased to another MAC). The guest runs on throughout (one boot)."""
    ec2, _ = tenant
    token = uuid.uuid4().hex[:12]
    # the guest's own watcher, twice: waits for eth1, asks DHCP on it, says what it has,
    # then waits for eth1 to go
    watch = ("n=0; while [ ! -e /sys/class/net/eth1 ] && [ $n -lt 1200 ]; do usleep 250000; n=$((n+1)); done\n"
             "ip link set eth1 up; udhcpc -i eth1 -n -q -t 5 -s /etc/udhcpc.script >/dev/null 2>&1\n"
             "echo \"plugged-%s-$k: $(cat /sys/class/net/eth1/address) $(ip -o -4 addr show dev eth1 | "
             "awk '{print $4}')\" > /dev/console\n"
             "n=0; while [ -e /sys/class/net/eth1 ] && [ $n -lt 1200 ]; do usleep 250000; n=$((n+1)); done\n"
             "echo unplugged-%s-$k > /dev/console\n" % (token, token))
    ud = "#!/bin/sh\n(for k in 1 2; do\n%sdone) &\n" % watch
    r = ec2.run_instances(ImageId=images["virga-tiny"], InstanceType="t3.nano", MinCount=1, MaxCount=1, UserData=ud)
    iid = r["Instances"][0]["InstanceId"]
    inst = wait_state(ec2, iid, "running")
    ready = "VIRGA-GUEST-READY instance-id=%s" % iid
    wait_console(ec2, iid, [ready], first_boot=True)
    address = None
    for k in (1, 2):
        kw = {"PrivateIpAddress": address} if address else {}
        eni = ec2.create_network_interface(SubnetId=inst["SubnetId"], **kw)["NetworkInterface"]
        address = eni["PrivateIpAddress"]
        att = ec2.attach_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=iid,
                                           DeviceIndex=1)["AttachmentId"]
        text = wait_console(ec2, iid, ["plugged-%s-%d:" % (token, k)])
        line = text.split("plugged-%s-%d:" % (token, k))[1].split("\n")[0].split()
        # no address on the second: the first one's lease held it
        assert len(line) == 2 and line[0] == eni["MacAddress"] and line[1].startswith(address + "/"), (k, line, eni)
        ec2.detach_network_interface(AttachmentId=att)
        text = wait_console(ec2, iid, ["unplugged-%s-%d" % (token, k)])
        assert text.count(ready) == 1, text[-3000:]
        assert describe(ec2, iid)["State"]["Name"] == "running"
        deadline = time.time() + 30
        while ec2.describe_network_interfaces(NetworkInterfaceIds=[eni["NetworkInterfaceId"]])[
                "NetworkInterfaces"][0]["Status"] != "available":
            assert time.time() < deadline, "the interface is not available after its detach"
            time.sleep(0.5)
        ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
