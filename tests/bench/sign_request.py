#!/usr/bin/python3
"""sign_request.py ACTION [k=v ...] - print a wrk Lua script that replays one POST Query
API request signed by botocore (a SigV4 signature stays valid for 15 minutes, and
the gateway, like AWS, accepts the same signed request again within that window)."""
import os
import sys

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def main():
    action, extra = sys.argv[1], sys.argv[2:]
    url = os.environ["VIRGA_EC2_URL"] + "/"
    body = "Action=%s&Version=2016-11-15" % action + "".join("&" + kv for kv in extra)
    req = AWSRequest(method="POST", url=url, data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]), "ec2",
              os.environ["AWS_DEFAULT_REGION"]).add_auth(req)
    print('wrk.method = "POST"')
    print("wrk.body = %r" % body)
    for k, v in req.headers.items():
        if k.lower() != "host":
            print("wrk.headers[%r] = %r" % (k, v))


main()
