"""EC2 calls with today's boto3 (tests/.venv, installed by tests/sdk-setup.sh): the Debian
Python the suites run on has boto3 1.26, whose models lack parameters today's SDKs send
(CreateRouteTable's ClientToken, for one). argv[1] is a JSON object:

    {"calls": [["create_route_table", {"VpcId": ...}], ...],   run in order
     "parallel": N,                                            or N threads, each all calls
     "resend": true}                                           send the last call's request again

The result is one JSON line: per call {"ok": true, "output": {...}} or {"ok": false,
"code", "status", "message"}; with "resend", "again" holds the raw answer to the same
signed request sent a second time (the SDK's retry after a lost answer). Endpoint and
credentials come from the environment (VIRGA_EC2_URL, AWS_*)."""
import concurrent.futures
import json
import os
import sys

import boto3
import botocore.httpsession
from botocore.config import Config
from botocore.exceptions import ClientError


def run(ec2, calls):
    out = []
    for method, kwargs in calls:
        try:
            r = getattr(ec2, method)(**kwargs)
            r.pop("ResponseMetadata", None)
            out.append({"ok": True, "output": r})
        except ClientError as e:
            out.append({"ok": False, "code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"],
                        "status": e.response["ResponseMetadata"]["HTTPStatusCode"]})
    return out


def main():
    spec = json.loads(sys.argv[1])
    ec2 = boto3.client("ec2", endpoint_url=os.environ["VIRGA_EC2_URL"],
                       config=Config(retries={"max_attempts": 1}))
    sent = []
    ec2.meta.events.register("before-send.ec2.*", lambda request, **kw: sent.append(request))
    result = {}
    if spec.get("parallel"):
        with concurrent.futures.ThreadPoolExecutor(spec["parallel"]) as pool:
            result["runs"] = list(pool.map(lambda _: run(ec2, spec["calls"]), range(spec["parallel"])))
    else:
        result["results"] = run(ec2, spec["calls"])
    if spec.get("resend"):
        body = sent[-1].body
        result["sent"] = body.decode() if isinstance(body, bytes) else body
        result["again"] = botocore.httpsession.URLLib3Session().send(sent[-1]).content.decode()
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
