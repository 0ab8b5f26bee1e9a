using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Mqtt5c.Tests
{
    public static class Tests
    {
        static byte[] B(string s) { return Encoding.UTF8.GetBytes(s); }

        static Client Connected(Broker broker, ClientOptions options = null)
        {
            var c = new Client(options);
            c.Connect(broker.Url);
            return c;
        }

        public static void TestRoundTripQos012()
        {
            using (var broker = new Broker())
            using (var sub = Connected(broker))
            using (var pub = Connected(broker))
            {
                var inbox = new Inbox<Message>();
                sub.MessageReceived += inbox.Add;
                Assert.Equal(2, sub.Subscribe("cs/rt/#", Qos.ExactlyOnce), "granted QoS");
                foreach (Qos q in new[] { Qos.AtMostOnce, Qos.AtLeastOnce, Qos.ExactlyOnce })
                {
                    var payload = new byte[] { 0, 1, 2, 255, (byte)q };
                    int rc = pub.Publish("cs/rt/" + (int)q, payload, q);
                    Assert.True(MqttException.IsSuccess(rc), "publish rc " + rc);
                    var m = inbox.Take("message at QoS " + q);
                    Assert.Equal("cs/rt/" + (int)q, m.Topic, "topic");
                    Assert.Bytes(payload, m.Payload, "payload");
                    Assert.Equal(q, m.Qos, "qos");
                    Assert.Equal(false, m.Retain, "retain");
                }
                // An empty payload, retained: the next subscriber gets it with the flag.
                pub.Publish("cs/retained", B("kept"), Qos.AtLeastOnce, true);
                var retained = new Inbox<Message>();
                sub.Subscribe("cs/retained", Qos.AtLeastOnce, retained.Add);
                var r = retained.Take("retained message");
                Assert.True(r.Retain, "retain flag");
                Assert.Bytes(B("kept"), r.Payload, "retained payload");
                pub.Publish("cs/retained", new byte[0], Qos.AtLeastOnce, true); // clears it
                Assert.Equal(0, retained.Take("empty payload").Payload.Length, "empty payload");
            }
        }

        public static void TestPublishAsyncCompletes()
        {
            using (var broker = new Broker())
            using (var sub = Connected(broker))
            using (var pub = Connected(broker))
            {
                var inbox = new Inbox<Message>();
                sub.MessageReceived += inbox.Add;
                sub.Subscribe("cs/async", Qos.ExactlyOnce);
                var tasks = Enumerable.Range(0, 50)
                    .Select(i => pub.PublishAsync("cs/async", B("m" + i), (Qos)(i % 3)))
                    .ToArray();
                Assert.True(Task.WaitAll(tasks, Inbox<int>.Timeout), "every PublishAsync completed");
                foreach (var t in tasks) Assert.True(MqttException.IsSuccess(t.Result), "result " + t.Result);
                var seen = new HashSet<string>();
                for (int i = 0; i < 50; i++) seen.Add(Encoding.UTF8.GetString(inbox.Take("async message").Payload));
                Assert.Equal(50, seen.Count, "distinct messages");
                // No subscriber on this topic: QoS 1 completes with 0x10, a success.
                Assert.Equal(0x10, pub.PublishAsync("cs/nobody", B("x"), Qos.AtLeastOnce).Result, "no matching subscribers");
            }
        }

        public static void TestPropertiesRoundTrip()
        {
            using (var broker = new Broker())
            using (var sub = Connected(broker))
            using (var pub = Connected(broker))
            {
                var inbox = new Inbox<Message>();
                sub.MessageReceived += inbox.Add;
                var subProps = new MqttProperties();
                subProps.SubscriptionIdentifiers.Add(42);
                sub.Subscribe("cs/props", Qos.AtLeastOnce, SubscribeFlags.None, subProps);
                var props = new MqttProperties
                {
                    ContentType = "application/json; charset=utf-8",
                    ResponseTopic = "cs/props/reply",
                    CorrelationData = new byte[] { 0, 0xFF, 0x10, 0x80 },
                    PayloadFormatIndicator = 1,
                    MessageExpiryInterval = 3600,
                };
                props.AddUserProperty("k", "v1").AddUserProperty("k", "v2").AddUserProperty("ключ", "значение ✓");
                pub.Publish("cs/props", B("{}"), Qos.AtLeastOnce, false, props);
                var m = inbox.Take("message with properties");
                var p = m.Properties;
                Assert.Equal(props.ContentType, p.ContentType, "content type");
                Assert.Equal(props.ResponseTopic, p.ResponseTopic, "response topic");
                Assert.Bytes(props.CorrelationData, p.CorrelationData, "correlation data");
                Assert.Equal((uint?)1, p.PayloadFormatIndicator, "payload format indicator");
                Assert.True(p.MessageExpiryInterval.HasValue && p.MessageExpiryInterval <= 3600, "message expiry");
                Assert.Equal(3, p.UserProperties.Count, "user property count");
                for (int i = 0; i < 3; i++)
                {
                    Assert.Equal(props.UserProperties[i].Key, p.UserProperties[i].Key, "user key " + i);
                    Assert.Equal(props.UserProperties[i].Value, p.UserProperties[i].Value, "user value " + i);
                }
                Assert.Equal(1, p.SubscriptionIdentifiers.Count, "one subscription identifier");
                Assert.Equal(42u, p.SubscriptionIdentifiers[0], "subscription identifier");
                // The CONNACK's properties are readable too.
                Assert.True(pub.ConnackProperties != null, "connack properties");
            }
        }

        public static void TestErrorsCarryCodeAndText()
        {
            using (var broker = new Broker())
            using (var c = Connected(broker))
            {
                // A wildcard in a topic name: nothing sent, connection intact.
                var e = Assert.Throws<MqttException>(() => c.Publish("cs/+/bad", B("x"), Qos.AtLeastOnce), "wildcard topic");
                Assert.Equal((ErrorCode?)ErrorCode.InvalidArgument, e.Error, "error code");
                Assert.Equal(-1, e.ReturnCode, "return code");
                Assert.Equal(null, e.ReasonCode, "no reason code");
                Assert.True(e.LastError.Length > 0, "mqtt_last_error text: " + e.LastError);
                Assert.True(e.Message.Contains(e.LastError), "message includes the text");
                Assert.True(c.IsConnected, "still connected");
                Assert.Equal(0x10, c.Publish("cs/ok", B("x"), Qos.AtLeastOnce), "publish after the error");

                // A property not allowed in PUBLISH.
                var sp = new MqttProperties();
                sp.SetInt(PropertyId.SessionExpiryInterval, 5);
                var pe = Assert.Throws<MqttException>(() => c.Publish("cs/p", B("x"), Qos.AtMostOnce, false, sp), "property");
                Assert.True(pe.LastError.ToLowerInvariant().Contains("session expiry"), "text names the property: " + pe.LastError);
            }
            // A CA file that does not exist: the text names it.
            var ce = Assert.Throws<MqttException>(() => new Client(new ClientOptions { TlsCaFile = "/nonexistent/ca.pem" }), "bad CA file");
            Assert.Equal((ErrorCode?)ErrorCode.InvalidArgument, ce.Error, "CA error code");
            Assert.True(ce.LastError.Contains("/nonexistent/ca.pem"), "text names the path: " + ce.LastError);
            // Nobody listens: an I/O error.
            using (var c = new Client(new ClientOptions { ConnectTimeoutMs = 10000 }))
            {
                var ie = Assert.Throws<MqttException>(() => c.Connect("mqtt://127.0.0.1:" + Broker.FreePort()), "refused");
                Assert.Equal((ErrorCode?)ErrorCode.Io, ie.Error, "connection refused is Io: " + ie.Message);
            }
        }

        public static void TestNulInStringRefusedBeforeC()
        {
            using (var broker = new Broker())
            using (var c = Connected(broker))
            {
                var inbox = new Inbox<Message>();
                c.Subscribe("cs/nul", Qos.AtLeastOnce, inbox.Add);
                // C would see "cs/nul" and publish there.
                var e = Assert.Throws<MqttException>(() => c.Publish("cs/nul\0/x", B("x"), Qos.AtLeastOnce), "NUL in topic");
                Assert.Equal((ErrorCode?)ErrorCode.InvalidArgument, e.Error, "error");
                Assert.True(e.LastError.Contains("NUL"), "text: " + e.LastError);
                var withNul = new MqttProperties().AddUserProperty("k\0", "v");
                var pe = Assert.Throws<MqttException>(() => c.Publish("cs/nul", B("x"), Qos.AtLeastOnce, false, withNul), "NUL in property");
                Assert.Equal((ErrorCode?)ErrorCode.InvalidArgument, pe.Error, "property error");
                c.Publish("cs/nul", B("ok"), Qos.AtLeastOnce);
                Assert.Bytes(B("ok"), inbox.Take("the next message").Payload, "only the good publish arrived");
            }
        }

        public static void TestEnhancedAuthMethodUnknownToBroker()
        {
            // mosquitto knows no enhanced authentication without a plugin: it refuses.
            using (var broker = new Broker())
            using (var c = new Client(new ClientOptions { AuthMethod = "SCRAM-SHA-256", AuthData = B("client-first") }))
            {
                int steps = 0;
                c.Auth = step => { steps++; step.Response = B("never asked"); return 0; };
                var e = Assert.Throws<MqttException>(() => c.Connect(broker.Url), "refused");
                Assert.Equal((int?)0x8C, e.ReasonCode, "bad authentication method: " + e.Message);
                Assert.Equal(0, steps, "no challenge came");
                c.Auth = null;
            }
        }

        public static void TestBrokerRefusalIsReasonCode()
        {
            // No anonymous access and no password file: CONNACK refuses.
            using (var broker = new Broker("", port => "listener " + port + " 127.0.0.1\nallow_anonymous false\n"))
            using (var c = new Client())
            {
                var e = Assert.Throws<MqttException>(() => c.Connect(broker.Url), "refused connect");
                Assert.True(e.ReasonCode.HasValue && e.ReasonCode >= 0x80, "reason code >= 0x80: " + e.Message);
                Assert.Equal(null, e.Error, "not a library error");
                Assert.True(e.ErrorText.Length > 0, "strerror text");
            }
        }

        public static void TestCallbackPublishesFromInsideItself()
        {
            using (var broker = new Broker())
            using (var responder = Connected(broker))
            using (var asker = Connected(broker))
            {
                var replies = new Inbox<Message>();
                // The handler makes blocking QoS 1 and QoS 2 publishes on its own client.
                responder.Subscribe("cs/ask", Qos.AtLeastOnce, m =>
                {
                    responder.Publish("cs/answer", m.Payload, Qos.AtLeastOnce);
                    responder.Publish("cs/answer", m.Payload, Qos.ExactlyOnce);
                });
                asker.Subscribe("cs/answer", Qos.ExactlyOnce, replies.Add);
                for (int i = 0; i < 10; i++)
                {
                    asker.Publish("cs/ask", B("q" + i), Qos.AtLeastOnce);
                    Assert.Bytes(B("q" + i), replies.Take("answer").Payload, "answer " + i);
                    Assert.Bytes(B("q" + i), replies.Take("second answer").Payload, "second answer " + i);
                }
                // And request/response through mqtt_request, answered from a callback.
                responder.Subscribe("cs/rpc", Qos.AtLeastOnce, m =>
                {
                    var p = new MqttProperties { CorrelationData = m.Properties.CorrelationData };
                    responder.Publish(m.Properties.ResponseTopic, B("re:" + Encoding.UTF8.GetString(m.Payload)), Qos.AtLeastOnce, false, p);
                });
                var resp = asker.Request("cs/rpc", B("ping"), Qos.AtLeastOnce, null, 30000);
                Assert.Bytes(B("re:ping"), resp.Payload, "response");
            }
        }

        public static void TestConnectionEventsAndReconnect()
        {
            using (var broker = new Broker())
            {
                var events = new Inbox<ConnectionEvent>();
                var options = new ClientOptions
                {
                    ClientId = "cs-reconnect", AutoReconnectMinDelayMs = 50, AutoReconnectMaxDelayMs = 200,
                    OfflineQueueMaxMessages = 100, OfflineQueuePolicy = QueuePolicy.DropOldest,
                };
                using (var c = new Client(options))
                {
                    Assert.Equal(null, c.ConnackProperties, "no CONNACK yet");
                    c.ConnectionChanged += (ev, rc) => events.Add(ev);
                    c.Connect(broker.Url);
                    Assert.Equal(ConnectionEvent.Connected, events.Take("connected"), "first event");
                    Assert.Equal("cs-reconnect", c.ClientId, "client id");
                    broker.Stop();
                    Assert.Equal(ConnectionEvent.Disconnected, events.Take("disconnected"), "after the broker died");
                    Assert.Equal(ConnectionEvent.Reconnecting, events.Take("reconnecting"), "reconnection attempt");
                    // While the client reconnects, a publish goes into the offline queue.
                    var queued = c.PublishAsync("cs/queued", B("q"), Qos.AtLeastOnce);
                    Assert.Equal(1ul, c.GetStat(Stat.QueueLength), "one message in the offline queue");
                    broker.Start();
                    ConnectionEvent ev2;
                    do ev2 = events.Take("connected again"); while (ev2 == ConnectionEvent.Reconnecting);
                    Assert.Equal(ConnectionEvent.Connected, ev2, "reconnected");
                    Assert.True(c.IsConnected, "connected");
                    Assert.Equal(0x10, c.Publish("cs/after", B("x"), Qos.AtLeastOnce), "publish after the reconnect");
                    Assert.True(queued.Wait(Inbox<int>.Timeout), "the queued publish completed");
                    Assert.True(MqttException.IsSuccess(queued.Result), "acknowledged after the reconnect: " + queued.Result);
                    Assert.Equal(1ul, c.GetStat(Stat.Queued), "counted as queued");
                    Assert.Equal(0ul, c.GetStat(Stat.QueueLength), "the queue is empty again");
                }
            }
        }

        public static void TestWillOnFreeWithoutDisconnect()
        {
            using (var broker = new Broker())
            using (var watcher = Connected(broker))
            {
                var wills = new Inbox<Message>();
                watcher.Subscribe("cs/will", Qos.AtLeastOnce, wills.Add);
                var willProps = new MqttProperties { ContentType = "text/plain" };
                var options = new ClientOptions
                {
                    Will = new Will { Topic = "cs/will", Payload = B("gone"), Qos = Qos.AtLeastOnce, Properties = willProps },
                };
                var c = Connected(broker, options);
                c.Dispose(); // no DISCONNECT: the broker publishes the will
                var w = wills.Take("will");
                Assert.Bytes(B("gone"), w.Payload, "will payload");
                Assert.Equal("text/plain", w.Properties.ContentType, "will property");
                Assert.Throws<ObjectDisposedException>(() => c.Publish("cs/x", B("x")), "use after Dispose");
                c.Dispose(); // twice is harmless
            }
        }

        /// <summary>Dispose (from the test thread and from inside a callback)
        /// while publishers and callbacks are busy: no crash, no hang.</summary>
        public static void TestDisposeWhileMessagesFlow()
        {
            using (var broker = new Broker())
            using (var pub = Connected(broker))
            {
                for (int round = 0; round < 5; round++)
                {
                    var sub = Connected(broker);
                    var received = new Inbox<int>();
                    sub.MessageReceived += m =>
                    {
                        received.Add(1);
                        try { sub.Publish("cs/flow/echo", m.Payload); }
                        catch (ObjectDisposedException) { } // Dispose came first
                    };
                    sub.Subscribe("cs/flow", Qos.AtLeastOnce);
                    var stop = new ManualResetEventSlim();
                    var publisher = new Thread(() =>
                    {
                        int i = 0;
                        while (!stop.IsSet)
                            try { sub.PublishAsync("cs/flow", B("self" + i++), (Qos)(i % 3)); pub.Publish("cs/flow", B("m" + i), Qos.AtLeastOnce); }
                            catch (ObjectDisposedException) { }
                            catch (MqttException) { }
                    });
                    publisher.Start();
                    for (int i = 0; i < 20; i++) received.Take("message before Dispose");
                    if (round % 2 == 0) sub.Dispose();
                    else
                    {
                        // Dispose from inside the client's own callback.
                        var done = new Inbox<int>();
                        sub.MessageReceived += m => { sub.Dispose(); done.Add(1); };
                        done.Take("Dispose inside the callback");
                    }
                    stop.Set();
                    Assert.True(publisher.Join(Inbox<int>.Timeout), "publisher stopped");
                    Assert.Throws<ObjectDisposedException>(() => sub.Subscribe("x", Qos.AtMostOnce), "disposed");
                }
                Assert.True(pub.IsConnected, "the other client is unaffected");
            }
        }

        /// <summary>Every PublishAsync task completes, also those whose
        /// completion the freed client dropped (ObjectDisposedException).</summary>
        public static void TestPublishAsyncTasksCompleteOnDispose()
        {
            using (var broker = new Broker())
            {
                for (int round = 0; round < 5; round++)
                {
                    var c = Connected(broker);
                    var tasks = new List<Task<int>>();
                    for (int i = 0; i < 200; i++) tasks.Add(c.PublishAsync("cs/abandon", B("m" + i), Qos.ExactlyOnce));
                    c.Dispose();
                    foreach (var t in tasks)
                    {
                        try { Assert.True(t.Wait(Inbox<int>.Timeout), "task completed"); }
                        catch (AggregateException e)
                        {
                            var inner = e.InnerException;
                            Assert.True(inner is ObjectDisposedException || inner is MqttException, "failed with " + inner);
                        }
                    }
                }
            }
        }

        /// <summary>GC.Collect in a loop while callbacks are registered and
        /// messages flow, and clients dropped without Dispose (the finalizer
        /// frees them): every message arrives, nothing crashes.</summary>
        public static void TestGcPressureWhileCallbacksRegistered()
        {
            using (var broker = new Broker())
            using (var pub = Connected(broker))
            {
                var sub = Connected(broker);
                int got = 0, routed = 0;
                var allDone = new ManualResetEventSlim();
                const int N = 2000;
                sub.MessageReceived += m => { if (Interlocked.Increment(ref got) == N) allDone.Set(); };
                sub.Subscribe("cs/gc/all", Qos.AtLeastOnce);
                sub.Subscribe("cs/gc/routed", Qos.AtMostOnce, m => { Interlocked.Increment(ref routed); new byte[4096].GetHashCode(); });
                var stop = new ManualResetEventSlim();
                var collector = new Thread(() =>
                {
                    while (!stop.IsSet)
                    {
                        GC.Collect();
                        GC.WaitForPendingFinalizers();
                    }
                });
                collector.Start();
                for (int i = 0; i < N; i++)
                {
                    pub.Publish("cs/gc/all", B("m" + i), (Qos)(i % 2));
                    pub.PublishAsync("cs/gc/routed", B("r" + i));
                    if (i % 400 == 0) DropConnectedClient(broker);
                }
                Assert.True(allDone.Wait(Inbox<int>.Timeout), "all messages arrived: " + got);
                stop.Set();
                collector.Join();
                Assert.True(routed > 0, "routed handler ran");
                sub.Dispose();
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        }

        // A connected client with callbacks that nothing references: the
        // finalizer of its handle frees it while the collector thread runs.
        static void DropConnectedClient(Broker broker)
        {
            var c = Connected(broker);
            c.MessageReceived += m => { };
            c.Subscribe("cs/gc/all", Qos.AtMostOnce, m => { });
        }

        public static void TestTls()
        {
            using (var certs = new Certs())
            using (var broker = new Broker("", port =>
                "listener " + port + " 127.0.0.1\nallow_anonymous true\n" +
                "cafile " + certs.Ca + "\ncertfile " + certs.ServerCert + "\nkeyfile " + certs.ServerKey + "\n"))
            {
                var url = "mqtts://127.0.0.1:" + broker.Port;
                var ok = new ClientOptions { TlsCaFile = certs.Ca, TlsServerName = "localhost" };
                // The CA as PEM text works the same.
                using (var c = new Client(new ClientOptions { TlsCaPem = System.IO.File.ReadAllText(certs.Ca), TlsServerName = "localhost" }))
                    c.Connect(url);
                using (var c = new Client(ok))
                {
                    c.Connect(url);
                    var inbox = new Inbox<Message>();
                    c.Subscribe("cs/tls", Qos.AtLeastOnce, inbox.Add);
                    c.Publish("cs/tls", B("secret"), Qos.AtLeastOnce);
                    Assert.Bytes(B("secret"), inbox.Take("message over TLS").Payload, "payload over TLS");
                }
                // Without the CA the handshake fails: MQTT5C_ERR_TLS with the cause.
                using (var c = new Client(new ClientOptions { TlsServerName = "localhost", ConnectTimeoutMs = 10000 }))
                {
                    var e = Assert.Throws<MqttException>(() => c.Connect(url), "unknown issuer");
                    Assert.Equal((ErrorCode?)ErrorCode.Tls, e.Error, "TLS error: " + e.Message);
                    Assert.True(e.LastError.Length > 0, "TLS error text");
                }
            }
        }

        /// <summary>With ManualAck, a message nobody handles is acknowledged
        /// all the same: else, with Receive Maximum 2, the broker holds back
        /// everything after two of them.</summary>
        public static void TestManualAckUnhandledMessagesDoNotStall()
        {
            using (var broker = new Broker())
            using (var pub = Connected(broker))
            using (var sub = Connected(broker, new ClientOptions { ManualAck = true, ReceiveMaximum = 2 }))
            {
                var routed = new Inbox<Message>();
                sub.Subscribe("cs/stall/#", Qos.AtLeastOnce);
                for (int i = 0; i < 5; i++) pub.Publish("cs/stall/unhandled", B("u" + i), Qos.AtLeastOnce);
                sub.Subscribe("cs/stall/marker", Qos.AtLeastOnce, m => { routed.Add(m); sub.Ack(m.AckId); });
                pub.Publish("cs/stall/marker", B("m"), Qos.AtLeastOnce);
                Assert.Bytes(B("m"), routed.Take("the marker behind the unhandled messages").Payload, "marker");
            }
        }

        public static void TestPreConnectSetsCredentials()
        {
            string dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mqtt5c-cs-pw-" + Guid.NewGuid().ToString("N"));
            System.IO.Directory.CreateDirectory(dir);
            string pwfile = System.IO.Path.Combine(dir, "passwd");
            try
            {
                var mk = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(
                    "mosquitto_passwd", "-b -c " + pwfile + " alice s3cret") { UseShellExecute = false });
                mk.WaitForExit();
                Assert.Equal(0, mk.ExitCode, "mosquitto_passwd");
                using (var broker = new Broker("", port => "listener " + port + " 127.0.0.1\nallow_anonymous false\npassword_file " + pwfile + "\n"))
                using (var c = new Client())
                {
                    var attempts = new List<string>();
                    // Without credentials the broker refuses; the callback supplies them.
                    Assert.Throws<MqttException>(() => c.Connect(broker.Url), "refused without credentials");
                    c.PreConnect = a =>
                    {
                        attempts.Add(a.Url + " #" + a.Number);
                        a.SetCredentials("alice", B("s3cret"));
                        return true;
                    };
                    c.Connect(broker.Url);
                    Assert.True(c.IsConnected, "connected with the callback's credentials");
                    Assert.Equal(1, attempts.Count, "one attempt");
                    Assert.Equal("mqtt://127.0.0.1:" + broker.Port + " #1", attempts[0], "url and number");
                    c.Disconnect();
                    // A callback that skips the attempt: Connect fails with NotConnected.
                    c.PreConnect = a => false;
                    var e = Assert.Throws<MqttException>(() => c.Connect(broker.Url), "skipped");
                    Assert.Equal((ErrorCode?)ErrorCode.NotConnected, e.Error, "every attempt skipped: " + e.Message);
                }
            }
            finally
            {
                System.IO.Directory.Delete(dir, true);
            }
        }

        public static void TestManualAckAndSubscribeMany()
        {
            using (var broker = new Broker())
            using (var pub = Connected(broker))
            using (var sub = Connected(broker, new ClientOptions { ManualAck = true }))
            {
                var inbox = new Inbox<Message>();
                sub.MessageReceived += inbox.Add;
                var bad = Assert.Throws<MqttException>(() => sub.SubscribeMany(new[] { "cs/many/a", "cs/many/#/bad" },
                    new[] { 1, 1 }), "an invalid filter");
                Assert.True(bad.LastError.Contains("cs/many/#/bad"), "the text names the filter: " + bad.LastError);
                var granted = sub.SubscribeMany(new[] { "cs/many/a", "cs/many/b" },
                    new[] { (int)Qos.AtLeastOnce, (int)Qos.ExactlyOnce | (int)SubscribeFlags.NoLocal });
                Assert.Equal(1, granted[0], "granted QoS 1");
                Assert.Equal(2, granted[1], "granted QoS 2");
                pub.Publish("cs/many/a", B("a"), Qos.AtLeastOnce);
                pub.Publish("cs/many/b", B("b"), Qos.ExactlyOnce);
                var ma = inbox.Take("a");
                var mb = inbox.Take("b");
                Assert.True(ma.AckId != 0 && mb.AckId != 0, "ack ids");
                Assert.True(sub.GetStat(Stat.InboundInflightPeak) >= 1, "unacknowledged messages counted in flight");
                sub.Ack(ma.AckId);
                sub.Ack(mb.AckId);
                var twice = Assert.Throws<MqttException>(() => sub.Ack(ma.AckId), "acknowledged twice");
                Assert.Equal((ErrorCode?)ErrorCode.BadState, twice.Error, "second ack: " + twice.Message);
                var gone = sub.UnsubscribeMany(new[] { "cs/many/a", "cs/many/none" });
                Assert.Equal(0, gone[0], "unsubscribed");
                Assert.Equal(0x11, gone[1], "no subscription existed");
            }
        }

        internal const string VersionChildFlag = "--version-child";

        /// <summary>A Mqtt5c.dll.config dllmap finds the library without
        /// LD_LIBRARY_PATH (README.md, "Building and loading the library").</summary>
        public static void TestDllMapConfigFindsLibrary()
        {
            string libDir = Environment.GetEnvironmentVariable("MQTT5C_LIB_DIR");
            Assert.True(!string.IsNullOrEmpty(libDir), "MQTT5C_LIB_DIR set by run-tests.sh");
            string here = System.IO.Path.GetDirectoryName(typeof(Tests).Assembly.Location);
            string dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mqtt5c-cs-dllmap-" + Guid.NewGuid().ToString("N"));
            System.IO.Directory.CreateDirectory(dir);
            try
            {
                foreach (var f in new[] { "Mqtt5c.dll", "Mqtt5c.Tests.exe" })
                    System.IO.File.Copy(System.IO.Path.Combine(here, f), System.IO.Path.Combine(dir, f));
                // Without LD_LIBRARY_PATH and without a dllmap, Mono cannot find it.
                var without = RunChild(dir, VersionChildFlag);
                Assert.True(without.Key != 0 && without.Value.Contains("DllNotFoundException"),
                    "no library without the dllmap: " + without.Value);
                System.IO.File.WriteAllText(System.IO.Path.Combine(dir, "Mqtt5c.dll.config"),
                    "<configuration>\n  <dllmap dll=\"mqtt5c\" target=\"" +
                    System.IO.Path.Combine(libDir, "libmqtt5c.so") + "\" />\n</configuration>\n");
                var with = RunChild(dir, VersionChildFlag);
                Assert.Equal(0, with.Key, "child exit status: " + with.Value);
                Assert.True(with.Value.StartsWith("mqtt5c "), "the library's version: " + with.Value);
            }
            finally
            {
                System.IO.Directory.Delete(dir, true);
            }
        }

        /// <summary>Runs Mqtt5c.Tests.exe in dir without LD_LIBRARY_PATH: exit status and output.</summary>
        static KeyValuePair<int, string> RunChild(string dir, string args)
        {
            var psi = new System.Diagnostics.ProcessStartInfo("mono", System.IO.Path.Combine(dir, "Mqtt5c.Tests.exe") + " " + args)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = dir,
            };
            psi.EnvironmentVariables.Remove("LD_LIBRARY_PATH");
            using (var p = System.Diagnostics.Process.Start(psi))
            {
                var err = p.StandardError.ReadToEndAsync();
                string output = p.StandardOutput.ReadToEnd();
                bool exited = p.WaitForExit(60000);
                if (!exited) p.Kill();
                Assert.True(exited, "child exited");
                return new KeyValuePair<int, string>(p.ExitCode, output + err.Result);
            }
        }

        internal const string CleanupChildFlag = "--cleanup-child";

        /// <summary>The library's native threads (tokio's "mqtt5c", the callback
        /// pool's "mqtt5c-cb"), by name.</summary>
        static int LibraryThreads()
        {
            int n = 0;
            foreach (var task in System.IO.Directory.GetDirectories("/proc/self/task"))
            {
                string comm;
                try { comm = System.IO.File.ReadAllText(task + "/comm").Trim(); }
                catch (System.IO.IOException) { continue; } // the thread just left
                if (comm.StartsWith("mqtt5c")) n++;
            }
            return n;
        }

        /// <summary>The child of TestCleanupStopsTheLibraryThreads, a process
        /// of its own so that no other test's client is alive.</summary>
        internal static int CleanupChild(string url)
        {
            for (int round = 0; round < 2; round++)
            {
                var c = Connected(new Uri(url));
                var inbox = new Inbox<Message>();
                c.Subscribe("cs/cleanup", Qos.AtLeastOnce, inbox.Add);
                c.Publish("cs/cleanup", B("x"), Qos.AtLeastOnce);
                inbox.Take("own message");
                Assert.True(LibraryThreads() > 0, "library threads while a client is connected");
                var e = Assert.Throws<MqttException>(Library.Cleanup, "Cleanup with a live client");
                Assert.Equal((ErrorCode?)ErrorCode.BadState, e.Error, "error of Cleanup with a live client");
                Assert.True(e.LastError.Contains("not freed"), "last error: " + e.LastError);
                c.Disconnect();
                c.Dispose();
                Library.Cleanup();
                Assert.Equal(0, LibraryThreads(), "library threads right after Cleanup");
                Library.Cleanup(); // twice is harmless
            }
            Console.WriteLine("cleanup child done");
            return 0;
        }

        /// <summary>Library.Cleanup refuses while a client lives, stops every
        /// native thread of the library once none does, and the library works
        /// again after it (in a child process).</summary>
        public static void TestCleanupStopsTheLibraryThreads()
        {
            using (var broker = new Broker())
            {
                var psi = new System.Diagnostics.ProcessStartInfo("mono",
                    "--debug " + typeof(Tests).Assembly.Location + " " + CleanupChildFlag + " " + broker.Url)
                {
                    UseShellExecute = false,
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                };
                using (var p = System.Diagnostics.Process.Start(psi))
                {
                    var err = p.StandardError.ReadToEndAsync();
                    var output = p.StandardOutput.ReadToEndAsync();
                    bool exited = p.WaitForExit(60000);
                    if (!exited) p.Kill();
                    Assert.True(exited, "the child exited within 60 s");
                    Assert.Equal(0, p.ExitCode, "child exit status; output: " + output.Result + err.Result);
                    Assert.True(output.Result.Contains("cleanup child done"), "child ran: " + output.Result + err.Result);
                }
            }
        }

        internal const string ExitChildFlag = "--exit-child";

        /// <summary>The child of TestMonoExitsWithClientConnected: returns
        /// from Main with a connected client that has handlers and has just
        /// received a message, without Dispose.</summary>
        internal static int ExitChild(string url)
        {
            var c = Connected(new Uri(url));
            var inbox = new Inbox<Message>();
            c.Subscribe("cs/exit", Qos.AtLeastOnce, inbox.Add);
            c.Publish("cs/exit", B("x"), Qos.AtLeastOnce);
            inbox.Take("own message");
            Console.WriteLine("main returning");
            return 0;
        }

        static Client Connected(Uri url)
        {
            var c = new Client();
            c.Connect(url.ToString());
            return c;
        }

        /// <summary>Mono does not wait for the library's runtime threads at exit.</summary>
        public static void TestMonoExitsWithClientConnected()
        {
            using (var broker = new Broker())
            {
                var psi = new System.Diagnostics.ProcessStartInfo("mono",
                    "--debug " + typeof(Tests).Assembly.Location + " " + ExitChildFlag + " " + broker.Url)
                {
                    UseShellExecute = false,
                    RedirectStandardOutput = true,
                };
                using (var p = System.Diagnostics.Process.Start(psi))
                {
                    var output = p.StandardOutput.ReadToEndAsync();
                    // Without the exit handling in Client, Mono's shutdown waited
                    // 40 s for a finalizer freeing the client.
                    bool exited = p.WaitForExit(20000);
                    if (!exited) p.Kill();
                    Assert.True(exited, "the child exited within 20 s (no hang at exit)");
                    Assert.Equal(0, p.ExitCode, "child exit status; output: " + output.Result);
                    Assert.True(output.Result.Contains("main returning"), "child ran: " + output.Result);
                }
            }
        }

        public static void TestMutualTls()
        {
            using (var certs = new Certs())
            using (var broker = new Broker("", port =>
                "listener " + port + " 127.0.0.1\nallow_anonymous true\nrequire_certificate true\n" +
                "cafile " + certs.Ca + "\ncertfile " + certs.ServerCert + "\nkeyfile " + certs.ServerKey + "\n"))
            {
                var url = "mqtts://localhost:" + broker.Port;
                var with = new ClientOptions { TlsCaFile = certs.Ca, TlsClientCertFile = certs.ClientCert, TlsClientKeyFile = certs.ClientKey };
                using (var c = new Client(with))
                {
                    c.Connect(url);
                    Assert.Equal(0x10, c.Publish("cs/mtls", B("x"), Qos.AtLeastOnce), "publish over mutual TLS");
                }
                var pems = new ClientOptions
                {
                    TlsCaFile = certs.Ca,
                    TlsClientCertPem = System.IO.File.ReadAllText(certs.ClientCert),
                    TlsClientKeyPem = System.IO.File.ReadAllText(certs.ClientKey),
                };
                using (var c = new Client(pems))
                    c.Connect(url);
                // Without a client certificate the broker ends the handshake.
                using (var c = new Client(new ClientOptions { TlsCaFile = certs.Ca, ConnectTimeoutMs = 10000 }))
                {
                    var e = Assert.Throws<MqttException>(() => c.Connect(url), "no client certificate");
                    Assert.Equal((ErrorCode?)ErrorCode.Tls, e.Error, "TLS error: " + e.Message);
                    Assert.True(e.LastError.Contains("client certificate"), "the text says why: " + e.LastError);
                }
                // A key that does not match the certificate: refused when the options are made.
                var mismatch = Assert.Throws<MqttException>(() => new Client(new ClientOptions
                    { TlsClientCertFile = certs.ClientCert, TlsClientKeyFile = certs.ServerKey }), "mismatched key");
                Assert.Equal((ErrorCode?)ErrorCode.InvalidArgument, mismatch.Error, "mismatch: " + mismatch.Message);
            }
        }

        public static void TestMqtt311RoundTrip()
        {
            using (var broker = new Broker())
            using (var sub = Connected(broker, new ClientOptions { ProtocolVersion = ProtocolVersion.V311 }))
            using (var pub = Connected(broker, new ClientOptions { ProtocolVersion = ProtocolVersion.Auto }))
            {
                Assert.Equal((ProtocolVersion?)ProtocolVersion.V311, sub.ProtocolVersion, "3.1.1 spoken");
                Assert.Equal((ProtocolVersion?)ProtocolVersion.V5, pub.ProtocolVersion, "Auto agreed on v5 with mosquitto");
                var inbox = new Inbox<Message>();
                sub.MessageReceived += inbox.Add;
                sub.Subscribe("cs/311", Qos.ExactlyOnce);
                pub.Publish("cs/311", B("old"), Qos.ExactlyOnce);
                var m = inbox.Take("message over 3.1.1");
                Assert.Bytes(B("old"), m.Payload, "payload");
                Assert.Equal(Qos.ExactlyOnce, m.Qos, "qos");
                // A handler's subscription: routed by topic (3.1.1 has no Subscription Identifier).
                var routed = new Inbox<Message>();
                sub.Subscribe("cs/311/cb/+", Qos.AtLeastOnce, routed.Add);
                pub.Publish("cs/311/cb/x", B("routed"), Qos.AtLeastOnce);
                Assert.Bytes(B("routed"), routed.Take("routed message over 3.1.1").Payload, "routed payload");
                // What only v5 has is refused, nothing sent.
                var e = Assert.Throws<MqttException>(() => sub.Publish("cs/311", B("x"), Qos.AtMostOnce, false,
                    new MqttProperties { ContentType = "text/plain" }), "properties on 3.1.1");
                Assert.Equal((ErrorCode?)ErrorCode.InvalidArgument, e.Error, "refused: " + e.Message);
                Assert.True(sub.IsConnected, "still connected");
            }
            var proxy = Assert.Throws<MqttException>(() => new Client(new ClientOptions { Proxy = "ftp://proxy:21" }), "bad proxy URL");
            Assert.Equal((ErrorCode?)ErrorCode.InvalidArgument, proxy.Error, "proxy: " + proxy.Message);
        }

        public static void TestHeaderConstantsMatch()
        {
            HeaderCheck.Run();
        }

        /// <summary>SetLogHandler: the lines arrive at the level asked for and
        /// more severe, on a library thread, without the password; a null
        /// handler stops them; a bad level is refused.</summary>
        public static void TestLogHandler()
        {
            const string password = "cs-secret-pw-5d1e";
            using (var broker = new Broker())
            using (var c = new Client(new ClientOptions { ClientId = "cs-log", Username = "csuser", Password = B(password) }))
            {
                var lines = new List<KeyValuePair<LogLevel, string>>();
                var connectedLine = new ManualResetEventSlim();
                int testThread = Thread.CurrentThread.ManagedThreadId;
                bool onTestThread = false;
                var ex = Assert.Throws<MqttException>(() => c.SetLogHandler((LogLevel)9, (l, t) => { }), "level 9");
                Assert.Equal((ErrorCode?)ErrorCode.InvalidArgument, ex.Error, "bad level code");
                c.SetLogHandler(LogLevel.Info, (level, line) =>
                {
                    lock (lines) lines.Add(new KeyValuePair<LogLevel, string>(level, line));
                    if (Thread.CurrentThread.ManagedThreadId == testThread) onTestThread = true;
                    if (level == LogLevel.Info && line.Contains("connected to")) connectedLine.Set();
                });
                c.Connect(broker.Url);
                Assert.True(connectedLine.Wait(Inbox<int>.Timeout), "an INFO line for the connection");
                c.Disconnect();
                c.SetLogHandler(LogLevel.Info, null);
                int count;
                lock (lines)
                {
                    count = lines.Count;
                    foreach (var l in lines)
                    {
                        Assert.True(l.Key >= LogLevel.Error && l.Key <= LogLevel.Info, "level " + l.Key + ": " + l.Value);
                        Assert.True(!l.Value.Contains(password), "the password in a line: " + l.Value);
                    }
                }
                Assert.True(!onTestThread, "the handler ran on a library thread");
                c.Connect(broker.Url);
                c.Disconnect();
                lock (lines) Assert.Equal(count, lines.Count, "lines after the handler was removed");
            }
        }

        /// <summary>At LogLevel.Warning the INFO lines of a connection do not
        /// arrive. Lines come in order with the messages: once the client's own
        /// message arrived, the connection's lines had arrived before it.</summary>
        public static void TestLogHandlerLevel()
        {
            using (var broker = new Broker())
            using (var c = new Client())
            {
                var lines = new List<KeyValuePair<LogLevel, string>>();
                var inbox = new Inbox<Message>();
                c.MessageReceived += inbox.Add;
                c.SetLogHandler(LogLevel.Warning, (level, line) =>
                {
                    lock (lines) lines.Add(new KeyValuePair<LogLevel, string>(level, line));
                });
                c.Connect(broker.Url);
                c.Subscribe("cs/log/own", Qos.AtLeastOnce);
                c.Publish("cs/log/own", B("x"), Qos.AtLeastOnce);
                inbox.Take("own message");
                lock (lines)
                    foreach (var l in lines)
                        Assert.True(l.Key <= LogLevel.Warning, "a line at " + l.Key + " for a Warning handler: " + l.Value);
            }
        }

        /// <summary>GetStats counts exactly the messages of the test, by QoS.</summary>
        public static void TestStatsCountTheTraffic()
        {
            using (var broker = new Broker())
            using (var c = Connected(broker))
            {
                var inbox = new Inbox<Message>();
                c.MessageReceived += inbox.Add;
                c.Subscribe("cs/stats/a", Qos.ExactlyOnce); // not cs/stats/b: received differs from sent
                c.Subscribe("cs/stats/c", Qos.ExactlyOnce);
                var before = c.GetStats();
                Assert.Equal((ulong)System.Runtime.InteropServices.Marshal.SizeOf(typeof(Stats)), before.Size, "size");
                Assert.Equal(240UL, before.Size, "size of mqtt5c_stats");
                Assert.Equal("0,0,0", string.Join(",", before.MessagesSent), "nothing sent yet");
                c.Publish("cs/stats/a", B("12345"), Qos.AtLeastOnce);
                c.Publish("cs/stats/a", B("6789"), Qos.AtLeastOnce);
                c.Publish("cs/stats/b", B("xyz"), Qos.AtMostOnce);
                c.Publish("cs/stats/c", B("qos2!!"), Qos.ExactlyOnce);
                for (int i = 0; i < 3; i++) inbox.Take("message " + i);
                var s = c.GetStats();
                Assert.Equal("1,2,1", string.Join(",", s.MessagesSent), "messages sent by QoS");
                Assert.Equal("3,9,6", string.Join(",", s.PayloadBytesSent), "bytes sent by QoS");
                Assert.Equal("0,2,1", string.Join(",", s.MessagesReceived), "messages received by QoS");
                Assert.Equal("0,9,6", string.Join(",", s.PayloadBytesReceived), "bytes received by QoS");
                Assert.Equal(0UL, s.Reconnects, "reconnects");
                Assert.Equal(0UL, s.OutboundInFlight, "in flight");
                Assert.True(s.Writes > 0, "writes counted");
            }
        }

        public static void TestVersion()
        {
            Assert.True(Library.Version.StartsWith("mqtt5c "), "version text: " + Library.Version);
            Assert.True(Library.VersionNumber > 0, "version number");
            Assert.True(Library.ErrorText(-1).Length > 0, "strerror");
        }
    }
}
