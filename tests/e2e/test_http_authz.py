#!/usr/bin/env python3
"""End-to-end: HTTP API publishes go through the broker's authorisation
decision (issue 9, "Every message in is authorised").

NOT in Makefile.am yet: roost_broker_publish refuses '$' topics and
over-long or over-deep topics only with the `acl` branch merged. The HTTP
side (connector/http_api.c, roost_http_publish_status) already maps the
broker's ROOST_ERR_NOT_AUTHORIZED to 403 and ROOST_ERR_BAD_TOPIC /
ROOST_ERR_TOO_LARGE to 400. Add this file to E2E_TESTS once both are in.
"""

import unittest

from roostlib import main
from test_http_api import HttpTestCase


class HttpAuthzTest(HttpTestCase):

    def test_sys_topic_via_http_is_403(self):
        # [MQTT-4.7.2-1] $ topics are the broker's; an HTTP client is a
        # publisher like any other.
        c = self.broker.client("sys-watcher")
        c.subscribe([("$SYS/broker/version", 0)])
        c.drain_publishes(idle=0.3)   # the broker's own retained value
        for topic in ("$SYS/broker/version", "$other/topic"):
            with self.subTest(topic=topic):
                r = self.api.publish(topic, "forged", retain=True)
                self.assert_message(r, 403, "refused: not authorised")
        c.expect_no_publish(0.3)

    def test_too_deep_topic_via_http_is_400(self):
        # limits.max_topic_levels defaults to 200.
        r = self.api.publish("/".join(["l"] * 201), "deep")
        self.assert_message(r, 400, "refused")


if __name__ == "__main__":
    main()
