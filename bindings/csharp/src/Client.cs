using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;

namespace Mqtt5c
{
    /// <summary>An MQTT v5 client (mqtt_client).
    ///
    /// Threads: every method may be called from any thread at once, and from
    /// inside the client's own callbacks (blocking ones included). The events
    /// (MessageReceived, ConnectionChanged, CallbackError), the hooks
    /// (PreConnect, Auth) and the handlers of Subscribe(..., handler) run on
    /// a library thread, never on the caller's: one at a time per client, in the order the broker sent
    /// things. PublishAsync's tasks complete there too, their continuations
    /// run on the thread pool.
    ///
    /// Lifetime: Dispose (or the finalizer, when the client was dropped)
    /// calls mqtt_client_free once no call of this client is inside the
    /// library (SafeHandle reference counting: never a freed pointer): at
    /// once when none is; when another thread blocks in Publish, as soon as
    /// that call returns. From Dispose on, a call that starts throws
    /// ObjectDisposedException and no event or handler starts (one running
    /// on a library thread at that moment finishes); after the free no
    /// callback runs at all.</summary>
    public sealed class Client : IDisposable
    {
        // The native callbacks: static delegates, so the GC never collects
        // the thunks C holds. user_data is a GCHandle: weak for the client and
        // the routes (C must not keep them alive, or a dropped client would
        // never be finalized), normal for a pending PublishAsync.
        static readonly Native.MessageCb OnMessageThunk = OnMessage;
        static readonly Native.MessageCb OnRoutedThunk = OnRouted;
        static readonly Native.ConnectionCb OnConnectionThunk = OnConnection;
        static readonly Native.PublishCb OnPublishedThunk = OnPublished;
        static readonly Native.PreConnectCb OnPreConnectThunk = OnPreConnect;
        static readonly Native.AuthCb OnAuthThunk = OnAuth;
        static readonly Native.LogCb OnLogThunk = OnLog;

        // Set when the process exits (AppDomain.ProcessExit): from then on
        // the thunks return at once and no client is freed. Mono aborts the
        // threads that ran managed code at shutdown and then runs the
        // finalizers; a finalizer freeing a client would wait for a callback
        // that Mono stopped (Mono gives up after about 40 s).
        static volatile bool exiting;

        static Client()
        {
            AppDomain.CurrentDomain.ProcessExit += (s, e) => exiting = true;
        }

        internal static bool Exiting { get { return exiting || Environment.HasShutdownStarted; } }

        readonly ClientHandle native;

        // Every call goes through this: Mono's SafeHandle still hands out
        // references after Dispose while another call holds one, so the
        // client refuses calls itself.
        ClientHandle handle
        {
            get
            {
                if (disposed) throw new ObjectDisposedException("Mqtt5c.Client");
                return native;
            }
        }
        // Set by Dispose: the events and handlers are not called any more
        // (the native free may wait for a call still inside the library).
        volatile bool disposed;
        // Strong references to the subscription handlers, by filter, for as
        // long as C may call them (until the client is freed).
        readonly Dictionary<string, Route> routes = new Dictionary<string, Route>();

        /// <summary>Messages that no Subscribe handler took. Runs on a library
        /// thread. Without a handler such messages are dropped, and
        /// acknowledged (also with ClientOptions.ManualAck).</summary>
        public event Action<Message> MessageReceived;

        /// <summary>Connection up or down (ConnectionEvent, with the reason
        /// code or attempt number of mqtt_connection_cb). Runs on a library
        /// thread, in order with the messages.</summary>
        public event Action<ConnectionEvent, int> ConnectionChanged;

        Func<ConnectAttempt, bool> preConnect;
        IntPtr selfHandle;

        /// <summary>Called before every connection attempt (each server of
        /// Connect, each reconnection attempt, each redirection), on a library
        /// thread: the place to set fresh credentials (a token that expires).
        /// Return true to make the attempt, false to skip it; an exception
        /// skips it too (and goes to CallbackError). Connect and Disconnect
        /// are refused inside it. Null removes it.</summary>
        public Func<ConnectAttempt, bool> PreConnect
        {
            get { return preConnect; }
            set
            {
                var h = handle;
                preConnect = value;
                Check(Native.mqtt_set_pre_connect_callback(h, value == null ? null : OnPreConnectThunk,
                    value == null ? IntPtr.Zero : selfHandle));
            }
        }

        volatile Action<LogLevel, string> log;

        /// <summary>Turns the client's diagnostic lines on (mqtt_set_log_callback):
        /// handler(level, line) receives each line at level and the more severe
        /// ones (LogLevel.Error fewest, LogLevel.Debug all); a null handler turns
        /// them off, the default (the library writes nothing by itself). A line
        /// never contains a password, authentication data or a payload.
        ///
        /// Thread: the handler runs on a library thread (the client's callback
        /// pool), one line at a time, in order with MessageReceived and
        /// ConnectionChanged, never on the thread that reads the socket: a slow
        /// handler delays the client's events, not its network. Up to 256 lines
        /// wait for it; more are dropped and counted (GetStats().LogDropped). Its
        /// exceptions go to CallbackError. The delegate C holds is a static one
        /// and user_data the client's weak GCHandle, so nothing the GC may move
        /// or collect is in C's hands. Throws MqttException
        /// (ErrorCode.InvalidArgument) for a level outside LogLevel.</summary>
        public void SetLogHandler(LogLevel level, Action<LogLevel, string> handler)
        {
            var h = handle;
            if (handler == null)
            {
                Check(Native.mqtt_set_log_callback(h, null, IntPtr.Zero, IntPtr.Zero, 0));
                log = null;
                return;
            }
            var prev = log;
            log = handler;
            try { Check(Native.mqtt_set_log_callback(h, OnLogThunk, selfHandle, IntPtr.Zero, (int)level)); }
            catch { log = prev; throw; }
        }

        /// <summary>All counters at once (mqtt_client_get_stats): messages and
        /// payload bytes in and out by QoS, reconnects, in flight, queued,
        /// dropped. Does not block.</summary>
        public Stats GetStats()
        {
            Stats s;
            Check(Native.mqtt_client_get_stats(handle, out s, (UIntPtr)Marshal.SizeOf(typeof(Stats))));
            return s;
        }

        Func<AuthStep, int> auth;

        /// <summary>Answers the broker's enhanced-authentication steps
        /// (ClientOptions.AuthMethod), on a library thread while Connect,
        /// Reauthenticate or a reconnection waits: set step.Response and
        /// return 0 to go on, or return a reason code (0x80-0xA2) to abort.
        /// An exception aborts with 0x80. Null removes it.</summary>
        public Func<AuthStep, int> Auth
        {
            get { return auth; }
            set
            {
                var h = handle;
                auth = value;
                Check(Native.mqtt_set_auth_callback(h, value == null ? null : OnAuthThunk,
                    value == null ? IntPtr.Zero : selfHandle));
            }
        }

        /// <summary>Re-authenticates on the live connection (AUTH 0x19 with
        /// data); the broker's challenges go to Auth. Throws for a refusal.</summary>
        public void Reauthenticate(byte[] data, MqttProperties properties = null)
        {
            using (var p = new NativeProps(properties))
                Check(Native.mqtt_reauthenticate(handle, data, (UIntPtr)(data == null ? 0 : data.Length), p.Ptr));
        }

        /// <summary>An exception thrown by a handler or event of this client
        /// (it cannot propagate into the library). Without a subscriber it is
        /// written to stderr.</summary>
        public event Action<Exception> CallbackError;

        public Client(ClientOptions options = null)
        {
            IntPtr opts = (options ?? new ClientOptions()).ToNative();
            IntPtr raw;
            try
            {
                raw = Native.mqtt_client_new(opts);
                if (raw == IntPtr.Zero) throw MqttException.FromNull("mqtt_client_new");
            }
            finally
            {
                Native.mqtt_options_free(opts);
            }
            native = new ClientHandle(raw);
            IntPtr self = selfHandle = native.Keep(GCHandle.Alloc(this, GCHandleType.Weak));
            Check(Native.mqtt_set_message_callback(handle, OnMessageThunk, self));
            Check(Native.mqtt_set_connection_callback(handle, OnConnectionThunk, self));
        }

        static int Check(int rc) { return MqttException.Check(rc); }

        /// <summary>Connects ("mqtt://host:port", "mqtts://", "ws://", "wss://",
        /// "unix:///path"); blocks until CONNACK or the connect timeout.</summary>
        public void Connect(string url) { Check(Native.mqtt_connect(handle, Utf8.Z(url))); }

        /// <summary>Sends DISCONNECT with reasonCode (0x04: publish the will).</summary>
        public void Disconnect(int reasonCode = 0, MqttProperties properties = null)
        {
            using (var p = new NativeProps(properties))
                Check(Native.mqtt_disconnect(handle, reasonCode, p.Ptr));
        }

        public bool IsConnected { get { return Native.mqtt_is_connected(handle) == 1; } }

        /// <summary>The CONNACK's Session Present flag; false before any CONNACK.</summary>
        public bool SessionPresent { get { return Native.mqtt_session_present(handle) == 1; } }

        /// <summary>The client identifier in use (the assigned one after connect).</summary>
        public string ClientId
        {
            get
            {
                int len = Check(Native.mqtt_client_get_id(handle, null, UIntPtr.Zero));
                var buf = new byte[len + 1];
                len = Check(Native.mqtt_client_get_id(handle, buf, (UIntPtr)buf.Length));
                return System.Text.Encoding.UTF8.GetString(buf, 0, len);
            }
        }

        /// <summary>The properties of the last CONNACK; null before any.</summary>
        public MqttProperties ConnackProperties
        {
            get
            {
                IntPtr p = Native.mqtt_connack_properties(handle);
                if (p == IntPtr.Zero) return null;
                try { return MqttProperties.FromNative(p); }
                finally { Native.mqtt_properties_free(p); }
            }
        }

        /// <summary>The properties of the server's DISCONNECT that ended the
        /// most recent connection (reason string, server reference); null
        /// when it did not end that way.</summary>
        public MqttProperties DisconnectProperties
        {
            get
            {
                IntPtr p = Native.mqtt_disconnect_properties(handle);
                if (p == IntPtr.Zero) return null;
                try { return MqttProperties.FromNative(p); }
                finally { Native.mqtt_properties_free(p); }
            }
        }

        /// <summary>The version the live connection speaks; null when not connected.</summary>
        public ProtocolVersion? ProtocolVersion
        {
            get
            {
                int v = Native.mqtt_client_protocol_version(handle);
                return v > 0 ? (ProtocolVersion?)(ProtocolVersion)v : null;
            }
        }

        public ulong GetStat(Stat stat)
        {
            ulong v;
            Check(Native.mqtt_client_get_stat(handle, (int)stat, out v));
            return v;
        }

        /// <summary>Publishes and waits: QoS 0 until written, QoS 1/2 until
        /// acknowledged. Returns the reason code (0, or 0x10 no matching
        /// subscribers); throws MqttException for a failure (>= 0x80 or a
        /// library error).</summary>
        public int Publish(string topic, byte[] payload, Qos qos = Qos.AtMostOnce, bool retain = false,
            MqttProperties properties = null)
        {
            payload = payload ?? new byte[0];
            using (var p = new NativeProps(properties))
                return Check(Native.mqtt_publish(handle, Utf8.Z(topic), payload, (UIntPtr)payload.Length,
                    (int)qos, retain, p.Ptr));
        }

        /// <summary>Publishes without waiting for the acknowledgement: returns
        /// once written (throws at once for what Publish would refuse); the
        /// task completes with the reason code, or fails with MqttException,
        /// when the acknowledgement (or the loss) comes; one still pending when
        /// the client is freed fails with ObjectDisposedException.</summary>
        public Task<int> PublishAsync(string topic, byte[] payload, Qos qos = Qos.AtMostOnce, bool retain = false,
            MqttProperties properties = null)
        {
            payload = payload ?? new byte[0];
            var pending = new PendingPublish(handle.Pending);
            IntPtr ud = pending.Register();
            using (var p = new NativeProps(properties))
            {
                int rc = Native.mqtt_publish_async(handle, Utf8.Z(topic), payload, (UIntPtr)payload.Length,
                    (int)qos, retain, p.Ptr, OnPublishedThunk, ud);
                if (rc != 0)
                {
                    var e = MqttException.FromCode(rc);
                    pending.Unregister(ud);
                    throw e;
                }
            }
            return pending.Task;
        }

        /// <summary>Subscribes; messages go to MessageReceived. Returns the
        /// granted QoS; throws MqttException on a refusal (>= 0x80).</summary>
        public int Subscribe(string filter, Qos qos, SubscribeFlags flags = SubscribeFlags.None,
            MqttProperties properties = null)
        {
            using (var p = new NativeProps(properties))
                return Check(Native.mqtt_subscribe(handle, Utf8.Z(filter), (int)qos | (int)flags, p.Ptr));
        }

        /// <summary>Subscribes and sends this subscription's messages to
        /// handler (on a library thread) instead of MessageReceived, until the
        /// filter is unsubscribed or subscribed again.</summary>
        public int Subscribe(string filter, Qos qos, Action<Message> handler, SubscribeFlags flags = SubscribeFlags.None,
            MqttProperties properties = null)
        {
            if (handler == null) throw new ArgumentNullException("handler");
            var route = new Route(this, handler);
            IntPtr ud = handle.Keep(GCHandle.Alloc(route, GCHandleType.Weak));
            lock (routes) routes[filter] = route;
            using (var p = new NativeProps(properties))
            {
                int rc = Native.mqtt_subscribe_cb(handle, Utf8.Z(filter), (int)qos | (int)flags, p.Ptr, OnRoutedThunk, ud);
                if (!MqttException.IsSuccess(rc))
                {
                    var e = MqttException.FromCode(rc);
                    lock (routes) if (routes.TryGetValue(filter, out route) && route.Handler == handler) routes.Remove(filter);
                    throw e;
                }
                return rc;
            }
        }

        /// <summary>Subscribes to several filters in one SUBSCRIBE (options[i]:
        /// QoS | SubscribeFlags of filters[i]). Returns each filter's SUBACK
        /// code (granted QoS, or a refusal >= 0x80: then no exception, the
        /// caller reads the codes); throws for a library error.</summary>
        public int[] SubscribeMany(IList<string> filters, IList<int> options, MqttProperties properties = null)
        {
            if (filters == null || options == null || filters.Count != options.Count)
                throw new ArgumentException("filters and options must be of the same length");
            var results = new int[filters.Count];
            using (var names = new CStringArray(filters))
            using (var p = new NativeProps(properties))
            {
                int rc = Native.mqtt_subscribe_many(handle, names.Ptrs, options.ToArray(), (UIntPtr)results.Length, p.Ptr, results);
                if (rc < 0) throw MqttException.FromCode(rc);
            }
            return results;
        }

        /// <summary>Unsubscribes from several filters in one UNSUBSCRIBE;
        /// returns each filter's UNSUBACK code (0, 0x11, or >= 0x80).</summary>
        public int[] UnsubscribeMany(IList<string> filters, MqttProperties properties = null)
        {
            var results = new int[filters.Count];
            using (var names = new CStringArray(filters))
            using (var p = new NativeProps(properties))
            {
                int rc = Native.mqtt_unsubscribe_many(handle, names.Ptrs, (UIntPtr)results.Length, p.Ptr, results);
                if (rc < 0) throw MqttException.FromCode(rc);
            }
            lock (routes) foreach (var f in filters) routes.Remove(f);
            return results;
        }

        /// <summary>Unsubscribes; returns the UNSUBACK reason (0, or 0x11 no subscription existed).</summary>
        public int Unsubscribe(string filter, MqttProperties properties = null)
        {
            using (var p = new NativeProps(properties))
            {
                int rc = Check(Native.mqtt_unsubscribe(handle, Utf8.Z(filter), p.Ptr));
                lock (routes) routes.Remove(filter);
                return rc;
            }
        }

        /// <summary>Request/response: publishes with a Response Topic and
        /// Correlation Data and waits for the answer (timeoutMs 0: the
        /// operation timeout).</summary>
        public Message Request(string topic, byte[] payload, Qos qos = Qos.AtMostOnce, MqttProperties properties = null,
            uint timeoutMs = 0)
        {
            payload = payload ?? new byte[0];
            IntPtr response;
            using (var p = new NativeProps(properties))
                Check(Native.mqtt_request(handle, Utf8.Z(topic), payload, (UIntPtr)payload.Length, (int)qos, p.Ptr,
                    timeoutMs, out response));
            try { return Message.FromNative(response); }
            finally { Native.mqtt_message_free(response); }
        }

        /// <summary>Acknowledges a message (ClientOptions.ManualAck) by its AckId.</summary>
        public void Ack(ulong ackId, int reasonCode = 0) { Check(Native.mqtt_ack(handle, ackId, reasonCode)); }

        /// <summary>Frees the client (mqtt_client_free: no DISCONNECT, so the
        /// broker publishes the will; Disconnect first for a clean end). May be
        /// called from the client's own callbacks.</summary>
        public void Dispose()
        {
            disposed = true;
            native.Dispose();
        }

        void Report(Exception e)
        {
            if (disposed) return; // what failed was cut short by Dispose
            var h = CallbackError;
            if (h != null)
            {
                try { h(e); return; }
                catch (Exception inner) { e = new AggregateException(e, inner); }
            }
            Console.Error.WriteLine("mqtt5c: exception in a callback: " + e);
        }

        // The thunks C calls. No exception may leave them (it would unwind
        // through the library's frames): a handler's goes to Report; a
        // ThreadAbortException (Mono aborts threads at exit) is cancelled
        // for this thread, which belongs to the library, not to Mono.
        static void OnMessage(IntPtr ud, IntPtr message)
        {
            if (Exiting) return;
            Client c = null;
            try
            {
                c = GCHandle.FromIntPtr(ud).Target as Client;
                if (c == null || c.disposed) return;
                var h = c.MessageReceived;
                if (h != null) h(Message.FromNative(message));
                else
                {
                    // Nobody receives it: acknowledge it, as the library does
                    // for a message no callback receives (with ManualAck the
                    // QoS 1/2 stream would stall on it otherwise).
                    ulong ackId = Native.mqtt_message_ack_id(message);
                    if (ackId != 0) Native.mqtt_ack(c.native, ackId, 0);
                }
            }
            catch (ThreadAbortException) { Thread.ResetAbort(); }
            catch (Exception e) { if (c != null) c.Report(e); }
        }

        static void OnRouted(IntPtr ud, IntPtr message)
        {
            if (Exiting) return;
            Route r = null;
            try
            {
                r = GCHandle.FromIntPtr(ud).Target as Route;
                if (r == null || r.Owner.disposed) return;
                r.Handler(Message.FromNative(message));
            }
            catch (ThreadAbortException) { Thread.ResetAbort(); }
            catch (Exception e) { if (r != null) r.Owner.Report(e); }
        }

        static void OnConnection(IntPtr ud, int ev, int reasonCode)
        {
            if (Exiting) return;
            Client c = null;
            try
            {
                c = GCHandle.FromIntPtr(ud).Target as Client;
                if (c == null || c.disposed) return;
                var h = c.ConnectionChanged;
                if (h != null) h((ConnectionEvent)ev, reasonCode);
            }
            catch (ThreadAbortException) { Thread.ResetAbort(); }
            catch (Exception e) { if (c != null) c.Report(e); }
        }

        static void OnLog(IntPtr ud, int level, IntPtr line)
        {
            if (Exiting) return;
            Client c = null;
            try
            {
                c = GCHandle.FromIntPtr(ud).Target as Client;
                if (c == null || c.disposed) return;
                var h = c.log;
                if (h != null) h((LogLevel)level, Utf8.From(line));
            }
            catch (ThreadAbortException) { Thread.ResetAbort(); }
            catch (Exception e) { if (c != null) c.Report(e); }
        }

        static int OnPreConnect(IntPtr ud, IntPtr url, uint attempt, IntPtr opts)
        {
            if (Exiting) return 1;
            Client c = null;
            try
            {
                c = GCHandle.FromIntPtr(ud).Target as Client;
                if (c == null || c.disposed) return 1;
                var h = c.preConnect;
                if (h == null) return 0;
                var a = new ConnectAttempt(Utf8.From(url), attempt, opts);
                try { return h(a) ? 0 : 1; }
                finally { a.End(); }
            }
            catch (ThreadAbortException) { Thread.ResetAbort(); }
            catch (Exception e) { if (c != null) c.Report(e); }
            return 1;
        }

        static int OnAuth(IntPtr ud, int reasonCode, IntPtr method, IntPtr data, UIntPtr len, IntPtr response)
        {
            const int Abort = 0x80;
            if (Exiting) return Abort;
            Client c = null;
            try
            {
                c = GCHandle.FromIntPtr(ud).Target as Client;
                if (c == null || c.disposed) return Abort;
                var h = c.auth;
                if (h == null) return Abort;
                var step = new AuthStep(reasonCode, Utf8.From(method),
                    data == IntPtr.Zero ? null : Utf8.Bytes(data, checked((int)(ulong)len)));
                int rc = h(step);
                if (rc == 0 && step.Response != null)
                    rc = Native.mqtt_auth_response_set_data(response, step.Response, (UIntPtr)step.Response.Length) == 0 ? 0 : Abort;
                return rc;
            }
            catch (ThreadAbortException) { Thread.ResetAbort(); }
            catch (Exception e) { if (c != null) c.Report(e); }
            return Abort;
        }

        static void OnPublished(IntPtr ud, int result, IntPtr ackProps)
        {
            if (Exiting) return;
            try { PendingPublish.Complete(ud, result); }
            catch (ThreadAbortException) { Thread.ResetAbort(); }
            catch (Exception e) { Console.Error.WriteLine("mqtt5c: publish completion: " + e); }
        }

        sealed class Route
        {
            internal readonly Client Owner;
            internal readonly Action<Message> Handler;
            internal Route(Client owner, Action<Message> handler) { Owner = owner; Handler = handler; }
        }
    }

    /// <summary>One step of enhanced authentication, passed to Client.Auth.</summary>
    public sealed class AuthStep
    {
        /// <summary>0x18 continue (a challenge to answer) or 0x00 success
        /// (the broker's final data, to verify).</summary>
        public int ReasonCode { get; private set; }
        public string Method { get; private set; }
        /// <summary>The broker's authentication data; null when it sent none.</summary>
        public byte[] Data { get; private set; }
        /// <summary>The answer to a challenge (null: none).</summary>
        public byte[] Response { get; set; }

        internal AuthStep(int reasonCode, string method, byte[] data)
        {
            ReasonCode = reasonCode;
            Method = method;
            Data = data;
        }
    }

    /// <summary>A connection attempt, passed to Client.PreConnect: valid only
    /// during that call.</summary>
    public sealed class ConnectAttempt
    {
        IntPtr opts;

        /// <summary>Where the attempt goes (scheme canonical, port shown).</summary>
        public string Url { get; private set; }

        /// <summary>From 1 for each Connect and each reconnection.</summary>
        public uint Number { get; private set; }

        internal ConnectAttempt(string url, uint number, IntPtr opts)
        {
            Url = url;
            Number = number;
            this.opts = opts;
        }

        internal void End() { opts = IntPtr.Zero; }

        IntPtr Opts
        {
            get
            {
                if (opts == IntPtr.Zero) throw new InvalidOperationException("ConnectAttempt used after PreConnect returned");
                return opts;
            }
        }

        /// <summary>The user name and password of this attempt and the later ones.</summary>
        public void SetCredentials(string username, byte[] password)
        {
            MqttException.Check(Native.mqtt_options_set_credentials(Opts, Utf8.Z(username), password,
                (UIntPtr)(password == null ? 0 : password.Length)));
        }

        /// <summary>The CONNECT properties of this attempt and the later ones.</summary>
        public void SetConnectProperties(MqttProperties properties)
        {
            using (var p = new NativeProps(properties))
                MqttException.Check(Native.mqtt_options_set_connect_properties(Opts, p.Ptr));
        }
    }

    /// <summary>One PublishAsync waiting for its callback: a normal GCHandle
    /// (C holds it as user_data), freed by the callback, or with the client
    /// if the library drops the callback.</summary>
    internal sealed class PendingPublish
    {
        readonly HashSet<IntPtr> set;
        readonly TaskCompletionSource<int> tcs =
            new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);

        internal PendingPublish(HashSet<IntPtr> set) { this.set = set; }

        internal Task<int> Task { get { return tcs.Task; } }

        internal IntPtr Register()
        {
            IntPtr p = GCHandle.ToIntPtr(GCHandle.Alloc(this));
            lock (set) set.Add(p);
            return p;
        }

        internal void Unregister(IntPtr p)
        {
            bool mine;
            lock (set) mine = set.Remove(p);
            // The client's free may have released it already.
            if (mine) GCHandle.FromIntPtr(p).Free();
        }

        /// <summary>The client was freed before the completion came.</summary>
        internal void Abandon()
        {
            tcs.TrySetException(new ObjectDisposedException("Mqtt5c.Client",
                "the client was freed before the publish completed"));
        }

        /// <summary>On the callback thread: mqtt_last_error() is the result's text.</summary>
        internal static void Complete(IntPtr ud, int result)
        {
            var self = (PendingPublish)GCHandle.FromIntPtr(ud).Target;
            MqttException failure = MqttException.IsSuccess(result) ? null : MqttException.FromCode(result);
            self.Unregister(ud);
            if (failure == null) self.tcs.TrySetResult(result);
            else self.tcs.TrySetException(failure);
        }
    }

    /// <summary>Owns the native client: mqtt_client_free once no P/Invoke
    /// holds it (SafeHandle reference counting), then the GCHandles C had.</summary>
    internal sealed class ClientHandle : SafeHandle
    {
        readonly List<GCHandle> kept = new List<GCHandle>();
        internal readonly HashSet<IntPtr> Pending = new HashSet<IntPtr>();

        internal ClientHandle(IntPtr raw) : base(IntPtr.Zero, true) { SetHandle(raw); }

        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

        /// <summary>Keeps h until the client is freed; returns it as user_data.</summary>
        internal IntPtr Keep(GCHandle h)
        {
            lock (kept) kept.Add(h);
            return GCHandle.ToIntPtr(h);
        }

        protected override bool ReleaseHandle()
        {
            // At process exit the OS reclaims everything, and freeing could
            // wait for a callback thread Mono has stopped (see Client.exiting).
            if (Client.Exiting) return true;
            // Waits for running callbacks; none runs after it.
            Native.mqtt_client_free(handle);
            lock (kept)
            {
                foreach (var h in kept) h.Free();
                kept.Clear();
            }
            // The library dropped the completions of these publishes.
            lock (Pending)
            {
                foreach (var p in Pending)
                {
                    var h = GCHandle.FromIntPtr(p);
                    var pending = h.Target as PendingPublish;
                    h.Free();
                    if (pending != null) pending.Abandon();
                }
                Pending.Clear();
            }
            return true;
        }
    }

    /// <summary>Process-wide functions.</summary>
    public static class Library
    {
        /// <summary>"mqtt5c X.Y.Z".</summary>
        public static string Version { get { return Utf8.From(Native.mqtt_version()); } }

        /// <summary>0xXXYYZZ.</summary>
        public static uint VersionNumber { get { return Native.mqtt_version_number(); } }

        /// <summary>Sets the number of runtime worker threads; before any client exists
        /// (or after Cleanup).</summary>
        public static void Init(uint workerThreads) { MqttException.Check(Native.mqtt_global_init(workerThreads)); }

        /// <summary>mqtt_global_cleanup: once every client is disposed, stops the library's
        /// native threads and returns when they have exited (for a host that unloads the
        /// library). Throws MqttException (ErrorCode.BadState) while a client is not
        /// disposed (one dropped without Dispose counts until its finalizer ran) or when
        /// called from a handler. The next Client starts the threads again.</summary>
        public static void Cleanup() { MqttException.Check(Native.mqtt_global_cleanup()); }

        /// <summary>mqtt_strerror: the text of any return code.</summary>
        public static string ErrorText(int rc) { return Utf8.From(Native.mqtt_strerror(rc)); }
    }
}
