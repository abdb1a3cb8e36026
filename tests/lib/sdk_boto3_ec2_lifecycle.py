"""The EC2 instance lifecycle with today's boto3 (tests/.venv, installed by
tests/sdk-setup.sh), for tests/e2e/test_ec2_sdks.py (tests/lib/sdk_boto3_ec2.py runs single calls): Debian's boto3 1.26 is what the other
suites use, so the current one runs in its own interpreter. argv[1] is a JSON object
{"image_id", "endpoint"}; credentials and region come from the environment. The result is
one JSON line: what each step saw ({"ok": true, "steps": {...}}) or the first error
({"ok": false, "step", "code", "message"}).

Steps: run_instances (2 instances, a tag), the waiter instance_running, describe_instances
(by id, by tag filter, paginated with MaxResults), stop_instances + waiter
instance_stopped, start_instances + instance_running, get_console_output,
terminate_instances + waiter instance_terminated."""
import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def main():
    args = json.loads(sys.argv[1])
    ec2 = boto3.client("ec2", endpoint_url=args["endpoint"],
                       config=Config(retries={"max_attempts": 1, "mode": "standard"}))
    fast = {"Delay": 1, "MaxAttempts": 120}
    steps = {"boto3": boto3.__version__}
    step = "run_instances"
    try:
        r = ec2.run_instances(ImageId=args["image_id"], InstanceType="t3.nano", MinCount=2, MaxCount=2,
                              TagSpecifications=[{"ResourceType": "instance",
                                                  "Tags": [{"Key": "sdk", "Value": "today"}]}])
        ids = sorted(i["InstanceId"] for i in r["Instances"])
        steps[step] = {"ids": ids, "states": [i["State"]["Name"] for i in r["Instances"]],
                       "reservation": r["ReservationId"]}
        step = "wait_running"
        ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=fast)
        step = "describe_instances"
        d = ec2.describe_instances(InstanceIds=ids)
        insts = [i for res in d["Reservations"] for i in res["Instances"]]
        tagged = ec2.describe_instances(Filters=[{"Name": "tag:sdk", "Values": ["today"]}])
        pages = list(ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "instance-state-name", "Values": ["running"]}],
            PaginationConfig={"PageSize": 5}))
        steps[step] = {
            "states": sorted(i["State"]["Name"] for i in insts),
            "ips": sorted(i.get("PrivateIpAddress", "") for i in insts),
            "types": sorted(i["InstanceType"] for i in insts),
            "tagged": sorted(i["InstanceId"] for res in tagged["Reservations"] for i in res["Instances"]),
            "paged": sorted(i["InstanceId"] for p in pages for res in p["Reservations"] for i in res["Instances"]),
        }
        step = "stop_instances"
        s = ec2.stop_instances(InstanceIds=ids)
        steps[step] = sorted(x["CurrentState"]["Name"] for x in s["StoppingInstances"])
        ec2.get_waiter("instance_stopped").wait(InstanceIds=ids, WaiterConfig=fast)
        step = "start_instances"
        s = ec2.start_instances(InstanceIds=ids)
        steps[step] = sorted(x["PreviousState"]["Name"] for x in s["StartingInstances"])
        ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=fast)
        step = "get_console_output"
        steps[step] = ec2.get_console_output(InstanceId=ids[0], Latest=True).get("Output", "")
        step = "terminate_instances"
        t = ec2.terminate_instances(InstanceIds=ids)
        steps[step] = sorted(x["CurrentState"]["Name"] for x in t["TerminatingInstances"])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig=fast)
        d = ec2.describe_instances(InstanceIds=ids)
        steps["after_terminate"] = sorted(i["State"]["Name"] for res in d["Reservations"] for i in res["Instances"])
    except ClientError as e:
        print(json.dumps({"ok": False, "step": step, "code": e.response["Error"]["Code"],
                          "message": e.response["Error"].get("Message", "")}))
        return
    except Exception as e:   # a waiter that gave up, a parse error of today's botocore
        print(json.dumps({"ok": False, "step": step, "code": type(e).__name__, "message": str(e)}))
        return
    print(json.dumps({"ok": True, "steps": steps}))


main()
