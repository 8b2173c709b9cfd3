"""GET /metrics, end to end: Prometheus' text format 0.0.4 read by a strict
parser (python3-prometheus-client), values that move with the traffic the
test makes, and the API's token rule.
"""
import http.client
import json
import os
import re
import tempfile
import time
import unittest

from prometheus_client.parser import text_string_to_metric_families

import roostlib
from fake_ha import FakeHA
from roostlib import HOST, Broker

REQUIRED = ["roost_clients_connected", "roost_messages_received_total", "roost_messages_sent_total",
            "roost_messages_dropped_total", "roost_bytes_received_total", "roost_bytes_sent_total",
            "roost_subscriptions", "roost_retained_messages", "roost_store_commits_total",
            "roost_hub_events_delivered_total", "roost_hub_spool_events",
            "roost_store_commit_duration_seconds"]


def metrics_yaml(db, token=None, hub_url=None):
    extra = "http:\n  port: 0\n  bind: %s\n" % HOST
    if token:
        extra += "  token: %s\n" % json.dumps(token)
    extra += "persistence:\n  path: %s\n" % db
    if hub_url:
        extra += "hub:\n  url: %s\n  token: test-token\n  retry_max: 2\n  timeout: 2\n" % hub_url
    return roostlib.roost_yaml(log_level="info", extra=extra)


@roostlib.roost_only("roost's HTTP API")
class MetricsTest(unittest.TestCase):
    def start(self, token=None, ha=None):
        d = tempfile.mkdtemp(prefix="roost-metrics-")
        b = Broker(config_text=metrics_yaml(os.path.join(d, "roost.db"), token, ha.url() if ha else None))
        b.start()
        self.addCleanup(b.stop)
        self.http_port = int(b.wait_for_log(r"http listening on 127\.0\.0\.1:(\d+)").group(1))
        return b

    def get(self, token=None):
        c = http.client.HTTPConnection(HOST, self.http_port, timeout=5)
        c.request("GET", "/metrics", headers={"Authorization": "Bearer " + token} if token else {})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, r.getheader("Content-Type"), body

    def scrape(self, token=None):
        status, ctype, body = self.get(token)
        self.assertEqual(status, 200, body)
        self.assertEqual(ctype, "text/plain; version=0.0.4; charset=utf-8")
        text = body.decode("utf-8")
        self.assertTrue(text.endswith("\n"))
        # Every sample follows the HELP and TYPE of its family.
        declared = set()
        for line in text.splitlines():
            m = re.match(r"# TYPE (\S+) (counter|gauge|histogram)$", line)
            if m:
                declared.add(m.group(1))
            elif not line.startswith("# HELP "):
                name = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)", line).group(1)
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                self.assertTrue(name in declared or base in declared, line)
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        for f in fams.values():
            self.assertTrue(f.name.startswith("roost_"), f.name)
            self.assertNotEqual(f.type, "unknown", f.name)
            self.assertTrue(f.documentation, f.name)
        return fams

    @staticmethod
    def value(fams, family, sample=None, **labels):
        f = fams[family]
        total = 0
        for s in f.samples:
            if (sample or family) == s.name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
        return total

    def test_strict_parse_and_values_move_with_traffic(self):
        ha = FakeHA().start()
        self.addCleanup(ha.stop)
        b = self.start(ha=ha)
        before = self.scrape()
        for name in REQUIRED:
            # the parser names a counter's family without its _total
            self.assertTrue(name in before or re.sub(r"_total$", "", name) in before, name)
        self.assertEqual(before["roost_store_commit_duration_seconds"].type, "histogram")
        self.assertEqual(self.value(before, "roost_clients_connected"), 0)

        sub = b.client("m-sub")
        sub.subscribe([("home-assistant/#", 1)])
        pub = b.client("m-pub")
        for i in range(10):
            pub.publish("home-assistant/m/%d" % i, b"y" * 50, qos=1, retain=(i == 0))
        for _ in range(10):
            sub.expect_publish()
        ha.wait_events(10, 10)
        deadline = time.time() + 5              # HA records an event before roost reads the answer
        after = self.scrape()
        while self.value(after, "roost_hub_events_delivered", "roost_hub_events_delivered_total") < 10 \
                and time.time() < deadline:
            time.sleep(0.05)
            after = self.scrape()

        def grew(family, sample=None):
            return self.value(after, family, sample) - self.value(before, family, sample)

        self.assertEqual(self.value(after, "roost_clients_connected",
                                    listener="127.0.0.1:%d" % b.port, protocol_version="3.1.1"), 2)
        self.assertEqual(grew("roost_messages_received", "roost_messages_received_total"), 10)
        self.assertEqual(grew("roost_messages_sent", "roost_messages_sent_total"), 10)
        self.assertGreaterEqual(grew("roost_bytes_received", "roost_bytes_received_total"), 10 * 50)
        self.assertGreaterEqual(grew("roost_bytes_sent", "roost_bytes_sent_total"), 10 * 50)
        self.assertEqual(grew("roost_subscriptions"), 1)
        self.assertEqual(grew("roost_retained_messages"), 1)
        self.assertGreater(grew("roost_store_commits", "roost_store_commits_total"), 0)
        commits = self.value(after, "roost_store_commit_duration_seconds",
                             "roost_store_commit_duration_seconds_count")
        self.assertGreater(commits, 0)
        self.assertEqual(self.value(after, "roost_store_commit_duration_seconds",
                                    "roost_store_commit_duration_seconds_bucket", le="+Inf"), commits)
        self.assertGreaterEqual(self.value(after, "roost_hub_events_delivered",
                                           "roost_hub_events_delivered_total"), 10)
        self.assertEqual(self.value(after, "roost_hub_spool_events"), 0)

    def test_hub_spool_grows_while_home_assistant_is_down(self):
        ha = FakeHA().start()
        self.addCleanup(ha.stop)
        ha.go_down()
        b = self.start(ha=ha)
        pub = b.client("m-pub")
        for i in range(5):
            pub.publish("home-assistant/d/%d" % i, b"z", qos=1)
        fams = self.scrape()
        self.assertEqual(self.value(fams, "roost_hub_spool_events"), 5)

    def test_token_rules_apply_401_without_it(self):
        self.start(token="s3cret")
        status, _, body = self.get()
        self.assertEqual(status, 401, body)
        status, _, _ = self.get("wrong")
        self.assertEqual(status, 401)
        self.scrape("s3cret")


if __name__ == "__main__":
    roostlib.main()
