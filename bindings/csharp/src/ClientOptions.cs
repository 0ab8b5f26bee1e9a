using System;
using System.Collections.Generic;

namespace Mqtt5c
{
    /// <summary>The will message, published by the broker when the
    /// connection ends without DISCONNECT (or with reason 0x04).</summary>
    public sealed class Will
    {
        public string Topic;
        public byte[] Payload = new byte[0];
        public Qos Qos;
        public bool Retain;
        public MqttProperties Properties;
    }

    /// <summary>Connection settings, plain managed data: Client's constructor
    /// copies them into the library (and throws MqttException for a value it
    /// refuses, e.g. an unreadable CA file, with the library's text). Null
    /// means the library's default.</summary>
    public sealed class ClientOptions
    {
        public string ClientId;
        /// <summary>V5 (the default), V311, or Auto (v5, falling back to
        /// 3.1.1). On 3.1.1 what only v5 has (properties, ...) is refused with
        /// ErrorCode.InvalidArgument.</summary>
        public ProtocolVersion? ProtocolVersion;
        /// <summary>"http://[user:pass@]host:port", "socks5://..." or "socks5h://...".</summary>
        public string Proxy;
        /// <summary>Take the proxy from HTTPS_PROXY / ALL_PROXY / NO_PROXY.</summary>
        public bool ProxyFromEnvironment;
        public ushort? KeepAliveSeconds;
        public bool? CleanStart;
        public uint? SessionExpirySeconds;
        public string Username;
        public byte[] Password;
        /// <summary>Enhanced authentication (e.g. "SCRAM-SHA-256") and its
        /// initial data; the broker's challenges go to Client.Auth.</summary>
        public string AuthMethod;
        public byte[] AuthData;
        public Will Will;
        public uint? ConnectTimeoutMs;
        public uint? OperationTimeoutMs;
        /// <summary>Further servers tried after Connect's URL.</summary>
        public List<string> Servers = new List<string>();
        public ushort? ReceiveMaximum;
        public uint? MaximumPacketSize;
        public bool? ManualAck;
        /// <summary>CONNECT properties (session expiry, user properties, ...).</summary>
        public MqttProperties ConnectProperties;
        /// <summary>Topic aliases: the most the broker may use towards us, and the
        /// most we use towards it (0: none, the default).</summary>
        public ushort? TopicAliasMaximum;
        public ushort? OutgoingTopicAliases;
        /// <summary>Bounds of the queue of received messages waiting for the handlers.</summary>
        public int? DeliveryQueueMaxMessages;
        public long? DeliveryQueueMaxBytes;
        /// <summary>Directory where QoS 1/2 messages in flight survive a restart (needs ClientId).</summary>
        public string PersistenceDir;
        /// <summary>How many CONNACK server redirections to follow (0: none).</summary>
        public uint? FollowRedirects;
        /// <summary>HTTP headers of the WebSocket upgrade (ws://, wss://), in order.</summary>
        public List<KeyValuePair<string, string>> WebSocketHeaders = new List<KeyValuePair<string, string>>();

        // Reconnection
        /// <summary>Reconnect automatically after a loss, backing off from min to max.</summary>
        public uint? AutoReconnectMinDelayMs;
        public uint? AutoReconnectMaxDelayMs;
        /// <summary>Keep trying in the background after a failed Connect.</summary>
        public bool? ConnectRetry;
        public bool? Resubscribe;
        public int? OfflineQueueMaxMessages;
        public long? OfflineQueueMaxBytes;
        public QueuePolicy OfflineQueuePolicy = QueuePolicy.FailNew;
        /// <summary>Queue QoS 0 messages too while reconnecting.</summary>
        public bool? OfflineQueueQos0;

        // TLS (mqtts://, wss://)
        /// <summary>PEM file of CA certificates trusted instead of the system store.</summary>
        public string TlsCaFile;
        /// <summary>The same, as PEM text instead of a file.</summary>
        public string TlsCaPem;
        /// <summary>Client certificate chain and key as PEM text instead of files.</summary>
        public string TlsClientCertPem;
        public string TlsClientKeyPem;
        public string TlsClientCertFile;
        public string TlsClientKeyFile;
        /// <summary>SNI and certificate name, instead of the URL's host.</summary>
        public string TlsServerName;
        public List<string> TlsAlpn = new List<string>();
        /// <summary>INSECURE: no certificate or host name check. Test rigs only.</summary>
        public bool TlsInsecureSkipVerify;

        /// <summary>A native mqtt_options with these settings; the caller frees it.</summary>
        internal IntPtr ToNative()
        {
            IntPtr o = Native.mqtt_options_new();
            if (o == IntPtr.Zero) throw MqttException.FromNull("mqtt_options_new");
            try
            {
                Apply(o);
                return o;
            }
            catch
            {
                Native.mqtt_options_free(o);
                throw;
            }
        }

        static void Check(int rc) { MqttException.Check(rc); }

        void Apply(IntPtr o)
        {
            if (ClientId != null) Check(Native.mqtt_options_set_client_id(o, Utf8.Z(ClientId)));
            if (ProtocolVersion.HasValue) Check(Native.mqtt_options_set_protocol_version(o, (int)ProtocolVersion.Value));
            if (Proxy != null) Check(Native.mqtt_options_set_proxy(o, Utf8.Z(Proxy)));
            if (ProxyFromEnvironment) Check(Native.mqtt_options_set_proxy_from_env(o, true));
            if (OfflineQueueQos0.HasValue) Check(Native.mqtt_options_set_offline_queue_qos0(o, OfflineQueueQos0.Value));
            if (KeepAliveSeconds.HasValue) Check(Native.mqtt_options_set_keep_alive(o, KeepAliveSeconds.Value));
            if (CleanStart.HasValue) Check(Native.mqtt_options_set_clean_start(o, CleanStart.Value));
            if (SessionExpirySeconds.HasValue) Check(Native.mqtt_options_set_session_expiry(o, SessionExpirySeconds.Value));
            if (Username != null || Password != null)
                Check(Native.mqtt_options_set_credentials(o, Utf8.Z(Username), Password,
                    (UIntPtr)(Password == null ? 0 : Password.Length)));
            if (AuthMethod != null)
                Check(Native.mqtt_options_set_auth(o, Utf8.Z(AuthMethod), AuthData,
                    (UIntPtr)(AuthData == null ? 0 : AuthData.Length)));
            if (Will != null)
            {
                var payload = Will.Payload ?? new byte[0];
                using (var props = new NativeProps(Will.Properties))
                    Check(Native.mqtt_options_set_will(o, Utf8.Z(Will.Topic), payload, (UIntPtr)payload.Length,
                        (int)Will.Qos, Will.Retain, props.Ptr));
            }
            if (ConnectTimeoutMs.HasValue) Check(Native.mqtt_options_set_connect_timeout(o, ConnectTimeoutMs.Value));
            if (OperationTimeoutMs.HasValue) Check(Native.mqtt_options_set_operation_timeout(o, OperationTimeoutMs.Value));
            foreach (var url in Servers) Check(Native.mqtt_options_add_server(o, Utf8.Z(url)));
            if (ReceiveMaximum.HasValue) Check(Native.mqtt_options_set_receive_maximum(o, ReceiveMaximum.Value));
            if (MaximumPacketSize.HasValue) Check(Native.mqtt_options_set_maximum_packet_size(o, MaximumPacketSize.Value));
            if (ManualAck.HasValue) Check(Native.mqtt_options_set_manual_ack(o, ManualAck.Value));
            if (ConnectProperties != null)
                using (var props = new NativeProps(ConnectProperties))
                    Check(Native.mqtt_options_set_connect_properties(o, props.Ptr));
            if (AutoReconnectMinDelayMs.HasValue || AutoReconnectMaxDelayMs.HasValue)
            {
                uint min = AutoReconnectMinDelayMs ?? 1000;
                Check(Native.mqtt_options_set_auto_reconnect(o, min, AutoReconnectMaxDelayMs ?? Math.Max(min, 30000u)));
            }
            if (ConnectRetry.HasValue) Check(Native.mqtt_options_set_connect_retry(o, ConnectRetry.Value));
            if (Resubscribe.HasValue) Check(Native.mqtt_options_set_resubscribe(o, Resubscribe.Value));
            if (OfflineQueueMaxMessages.HasValue || OfflineQueueMaxBytes.HasValue)
                Check(Native.mqtt_options_set_offline_queue(o, (UIntPtr)(ulong)(OfflineQueueMaxMessages ?? 10000),
                    (UIntPtr)(ulong)(OfflineQueueMaxBytes ?? 8L << 20), (int)OfflineQueuePolicy));
            if (TopicAliasMaximum.HasValue) Check(Native.mqtt_options_set_topic_alias_maximum(o, TopicAliasMaximum.Value));
            if (OutgoingTopicAliases.HasValue) Check(Native.mqtt_options_set_outgoing_topic_aliases(o, OutgoingTopicAliases.Value));
            if (DeliveryQueueMaxMessages.HasValue || DeliveryQueueMaxBytes.HasValue)
                Check(Native.mqtt_options_set_delivery_queue(o, (UIntPtr)(ulong)(DeliveryQueueMaxMessages ?? 1000),
                    (UIntPtr)(ulong)(DeliveryQueueMaxBytes ?? 8L << 20)));
            if (PersistenceDir != null) Check(Native.mqtt_options_set_persistence_dir(o, Utf8.Z(PersistenceDir)));
            if (FollowRedirects.HasValue) Check(Native.mqtt_options_set_follow_redirects(o, FollowRedirects.Value));
            foreach (var h in WebSocketHeaders) Check(Native.mqtt_options_add_ws_header(o, Utf8.Z(h.Key), Utf8.Z(h.Value)));
            ApplyTls(o);
        }

        void ApplyTls(IntPtr o)
        {
            if (TlsCaFile != null) Check(Native.mqtt_options_set_tls_ca_file(o, Utf8.Z(TlsCaFile)));
            if (TlsCaPem != null)
            {
                var pem = Utf8.Z(TlsCaPem);
                Check(Native.mqtt_options_set_tls_ca_pem(o, pem, (UIntPtr)(pem.Length - 1)));
            }
            if (TlsClientCertPem != null || TlsClientKeyPem != null)
            {
                var cert = Utf8.Z(TlsClientCertPem);
                var key = Utf8.Z(TlsClientKeyPem);
                try
                {
                    Check(Native.mqtt_options_set_tls_client_cert_pem(o, cert, (UIntPtr)(cert == null ? 0 : cert.Length - 1),
                        key, (UIntPtr)(key == null ? 0 : key.Length - 1)));
                }
                finally
                {
                    if (key != null) Array.Clear(key, 0, key.Length); // our copy of the private key
                }
            }
            if (TlsClientCertFile != null || TlsClientKeyFile != null)
                Check(Native.mqtt_options_set_tls_client_cert(o, Utf8.Z(TlsClientCertFile), Utf8.Z(TlsClientKeyFile)));
            if (TlsServerName != null) Check(Native.mqtt_options_set_tls_server_name(o, Utf8.Z(TlsServerName)));
            if (TlsAlpn.Count > 0)
                using (var names = new CStringArray(TlsAlpn))
                    Check(Native.mqtt_options_set_tls_alpn(o, names.Ptrs, (UIntPtr)names.Ptrs.Length));
            if (TlsInsecureSkipVerify) Check(Native.mqtt_options_set_tls_insecure_skip_verify(o, true));
        }
    }
}
