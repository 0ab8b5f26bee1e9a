// P/Invoke declarations of libmqtt5c (include/mqtt5c.h), one per C function
// the binding uses. Strings go in as NUL-terminated UTF-8 byte arrays and come
// back as IntPtr decoded by Utf8 below: no reliance on the runtime's default
// string encoding. C bool is one byte ([MarshalAs(I1)]); size_t is UIntPtr.
using System;
using System.Runtime.InteropServices;
using System.Text;

namespace Mqtt5c
{
    /// <summary>Raw C entry points. Library name "mqtt5c": Mono resolves it to
    /// libmqtt5c.so through LD_LIBRARY_PATH (or a dllmap in Mqtt5c.dll.config);
    /// see README.md.</summary>
    internal static class Native
    {
        const string Lib = "mqtt5c";

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void MessageCb(IntPtr userData, IntPtr message);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void ConnectionCb(IntPtr userData, int ev, int reasonCode);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int PreConnectCb(IntPtr userData, IntPtr url, uint attempt, IntPtr opts);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int AuthCb(IntPtr userData, int reasonCode, IntPtr method, IntPtr data, UIntPtr len, IntPtr response);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void LogCb(IntPtr userData, int level, IntPtr line);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void PublishCb(IntPtr userData, int result, IntPtr ackProps);

        // ---- version, errors, lifetime
        [DllImport(Lib)] internal static extern IntPtr mqtt_version();
        [DllImport(Lib)] internal static extern uint mqtt_version_number();
        [DllImport(Lib)] internal static extern IntPtr mqtt_strerror(int rc);
        [DllImport(Lib)] internal static extern IntPtr mqtt_last_error();
        [DllImport(Lib)] internal static extern int mqtt_global_init(uint workerThreads);
        [DllImport(Lib)] internal static extern int mqtt_global_cleanup();

        // ---- options
        [DllImport(Lib)] internal static extern IntPtr mqtt_options_new();
        [DllImport(Lib)] internal static extern void mqtt_options_free(IntPtr opts);
        [DllImport(Lib)] internal static extern int mqtt_options_set_client_id(IntPtr opts, byte[] id);
        [DllImport(Lib)] internal static extern int mqtt_options_set_keep_alive(IntPtr opts, ushort seconds);
        [DllImport(Lib)] internal static extern int mqtt_options_set_clean_start(IntPtr opts, [MarshalAs(UnmanagedType.I1)] bool on);
        [DllImport(Lib)] internal static extern int mqtt_options_set_session_expiry(IntPtr opts, uint seconds);
        [DllImport(Lib)] internal static extern int mqtt_options_set_credentials(IntPtr opts, byte[] username, byte[] password, UIntPtr len);
        [DllImport(Lib)] internal static extern int mqtt_options_set_will(IntPtr opts, byte[] topic, byte[] payload, UIntPtr len, int qos, [MarshalAs(UnmanagedType.I1)] bool retain, IntPtr props);
        [DllImport(Lib)] internal static extern int mqtt_options_set_connect_timeout(IntPtr opts, uint ms);
        [DllImport(Lib)] internal static extern int mqtt_options_set_operation_timeout(IntPtr opts, uint ms);
        [DllImport(Lib)] internal static extern int mqtt_options_set_auto_reconnect(IntPtr opts, uint minDelayMs, uint maxDelayMs);
        [DllImport(Lib)] internal static extern int mqtt_options_set_connect_retry(IntPtr opts, [MarshalAs(UnmanagedType.I1)] bool on);
        [DllImport(Lib)] internal static extern int mqtt_options_set_offline_queue(IntPtr opts, UIntPtr maxMessages, UIntPtr maxBytes, int policy);
        [DllImport(Lib)] internal static extern int mqtt_options_set_resubscribe(IntPtr opts, [MarshalAs(UnmanagedType.I1)] bool on);
        [DllImport(Lib)] internal static extern int mqtt_options_set_receive_maximum(IntPtr opts, ushort max);
        [DllImport(Lib)] internal static extern int mqtt_options_set_maximum_packet_size(IntPtr opts, uint bytes);
        [DllImport(Lib)] internal static extern int mqtt_options_set_manual_ack(IntPtr opts, [MarshalAs(UnmanagedType.I1)] bool on);
        [DllImport(Lib)] internal static extern int mqtt_options_set_connect_properties(IntPtr opts, IntPtr props);
        [DllImport(Lib)] internal static extern int mqtt_options_add_server(IntPtr opts, byte[] url);
        [DllImport(Lib)] internal static extern int mqtt_options_set_protocol_version(IntPtr opts, int version);
        [DllImport(Lib)] internal static extern int mqtt_options_set_proxy(IntPtr opts, byte[] proxyUrl);
        [DllImport(Lib)] internal static extern int mqtt_options_set_proxy_from_env(IntPtr opts, [MarshalAs(UnmanagedType.I1)] bool on);
        [DllImport(Lib)] internal static extern int mqtt_options_set_offline_queue_qos0(IntPtr opts, [MarshalAs(UnmanagedType.I1)] bool on);
        [DllImport(Lib)] internal static extern int mqtt_options_set_tls_ca_pem(IntPtr opts, byte[] pem, UIntPtr len);
        [DllImport(Lib)] internal static extern int mqtt_options_set_tls_client_cert_pem(IntPtr opts, byte[] certPem, UIntPtr certLen, byte[] keyPem, UIntPtr keyLen);
        [DllImport(Lib)] internal static extern int mqtt_options_set_auth(IntPtr opts, byte[] method, byte[] data, UIntPtr len);
        [DllImport(Lib)] internal static extern int mqtt_options_set_follow_redirects(IntPtr opts, uint maxHops);
        [DllImport(Lib)] internal static extern int mqtt_options_set_persistence_dir(IntPtr opts, byte[] path);
        [DllImport(Lib)] internal static extern int mqtt_options_set_delivery_queue(IntPtr opts, UIntPtr maxMessages, UIntPtr maxBytes);
        [DllImport(Lib)] internal static extern int mqtt_options_set_topic_alias_maximum(IntPtr opts, ushort max);
        [DllImport(Lib)] internal static extern int mqtt_options_set_outgoing_topic_aliases(IntPtr opts, ushort max);
        [DllImport(Lib)] internal static extern int mqtt_options_add_ws_header(IntPtr opts, byte[] name, byte[] value);
        [DllImport(Lib)] internal static extern int mqtt_options_set_tls_ca_file(IntPtr opts, byte[] path);
        [DllImport(Lib)] internal static extern int mqtt_options_set_tls_client_cert(IntPtr opts, byte[] certPath, byte[] keyPath);
        [DllImport(Lib)] internal static extern int mqtt_options_set_tls_server_name(IntPtr opts, byte[] name);
        [DllImport(Lib)] internal static extern int mqtt_options_set_tls_alpn(IntPtr opts, IntPtr[] protocols, UIntPtr count);
        [DllImport(Lib)] internal static extern int mqtt_options_set_tls_insecure_skip_verify(IntPtr opts, [MarshalAs(UnmanagedType.I1)] bool skip);

        // ---- client
        [DllImport(Lib)] internal static extern IntPtr mqtt_client_new(IntPtr opts);
        [DllImport(Lib)] internal static extern void mqtt_client_free(IntPtr client);
        [DllImport(Lib)] internal static extern int mqtt_set_message_callback(ClientHandle client, MessageCb cb, IntPtr userData);
        [DllImport(Lib)] internal static extern int mqtt_set_connection_callback(ClientHandle client, ConnectionCb cb, IntPtr userData);
        [DllImport(Lib)] internal static extern int mqtt_connect(ClientHandle client, byte[] url);
        [DllImport(Lib)] internal static extern int mqtt_disconnect(ClientHandle client, int reasonCode, IntPtr props);
        // int (0/1, or a negative error) before the header's predicates became
        // C bool: read as a byte (the low byte of the int, or the bool), so
        // both libraries give 1 for true and anything else is false.
        [DllImport(Lib)] internal static extern byte mqtt_is_connected(ClientHandle client);
        [DllImport(Lib)] internal static extern byte mqtt_session_present(ClientHandle client);
        [DllImport(Lib)] internal static extern int mqtt_client_get_id(ClientHandle client, byte[] buf, UIntPtr buflen);
        [DllImport(Lib)] internal static extern int mqtt_client_get_stat(ClientHandle client, int stat, out ulong value);
        [DllImport(Lib)] internal static extern int mqtt_client_get_stats(ClientHandle client, out Stats stats, UIntPtr size);
        [DllImport(Lib)] internal static extern int mqtt_set_log_callback(ClientHandle client, LogCb cb, IntPtr userData, IntPtr freeUserData, int level);
        [DllImport(Lib)] internal static extern IntPtr mqtt_connack_properties(ClientHandle client);
        [DllImport(Lib)] internal static extern IntPtr mqtt_disconnect_properties(ClientHandle client);
        [DllImport(Lib)] internal static extern int mqtt_client_protocol_version(ClientHandle client);
        [DllImport(Lib)] internal static extern int mqtt_set_auth_callback(ClientHandle client, AuthCb cb, IntPtr userData);
        [DllImport(Lib)] internal static extern int mqtt_auth_response_set_data(IntPtr response, byte[] data, UIntPtr len);
        [DllImport(Lib)] internal static extern int mqtt_reauthenticate(ClientHandle client, byte[] data, UIntPtr len, IntPtr props);
        [DllImport(Lib)] internal static extern int mqtt_set_pre_connect_callback(ClientHandle client, PreConnectCb cb, IntPtr userData);

        // ---- publish, subscribe
        [DllImport(Lib)] internal static extern int mqtt_publish(ClientHandle client, byte[] topic, byte[] payload, UIntPtr len, int qos, [MarshalAs(UnmanagedType.I1)] bool retain, IntPtr props);
        [DllImport(Lib)] internal static extern int mqtt_publish_async(ClientHandle client, byte[] topic, byte[] payload, UIntPtr len, int qos, [MarshalAs(UnmanagedType.I1)] bool retain, IntPtr props, PublishCb cb, IntPtr userData);
        [DllImport(Lib)] internal static extern int mqtt_subscribe(ClientHandle client, byte[] filter, int options, IntPtr props);
        [DllImport(Lib)] internal static extern int mqtt_subscribe_cb(ClientHandle client, byte[] filter, int options, IntPtr props, MessageCb cb, IntPtr userData);
        [DllImport(Lib)] internal static extern int mqtt_unsubscribe(ClientHandle client, byte[] filter, IntPtr props);
        [DllImport(Lib)] internal static extern int mqtt_subscribe_many(ClientHandle client, IntPtr[] filters, int[] options, UIntPtr count, IntPtr props, int[] results);
        [DllImport(Lib)] internal static extern int mqtt_unsubscribe_many(ClientHandle client, IntPtr[] filters, UIntPtr count, IntPtr props, int[] results);
        [DllImport(Lib)] internal static extern int mqtt_request(ClientHandle client, byte[] topic, byte[] payload, UIntPtr len, int qos, IntPtr props, uint timeoutMs, out IntPtr response);
        [DllImport(Lib)] internal static extern int mqtt_ack(ClientHandle client, ulong ackId, int reasonCode);

        // ---- messages
        [DllImport(Lib)] internal static extern IntPtr mqtt_message_topic(IntPtr message);
        [DllImport(Lib)] internal static extern IntPtr mqtt_message_payload(IntPtr message, out UIntPtr len);
        [DllImport(Lib)] internal static extern int mqtt_message_qos(IntPtr message);
        [DllImport(Lib)] [return: MarshalAs(UnmanagedType.I1)] internal static extern bool mqtt_message_retain(IntPtr message);
        [DllImport(Lib)] [return: MarshalAs(UnmanagedType.I1)] internal static extern bool mqtt_message_dup(IntPtr message);
        [DllImport(Lib)] internal static extern IntPtr mqtt_message_properties(IntPtr message);
        [DllImport(Lib)] internal static extern ulong mqtt_message_ack_id(IntPtr message);
        [DllImport(Lib)] internal static extern void mqtt_message_free(IntPtr message);

        // ---- properties
        [DllImport(Lib)] internal static extern IntPtr mqtt_properties_new();
        [DllImport(Lib)] internal static extern void mqtt_properties_free(IntPtr props);
        [DllImport(Lib)] internal static extern int mqtt_properties_add_user(IntPtr props, byte[] key, byte[] value);
        [DllImport(Lib)] internal static extern int mqtt_properties_set_int(IntPtr props, int id, uint value);
        [DllImport(Lib)] internal static extern int mqtt_properties_set_string(IntPtr props, int id, byte[] value);
        [DllImport(Lib)] internal static extern int mqtt_properties_set_binary(IntPtr props, int id, byte[] data, UIntPtr len);
        [DllImport(Lib)] internal static extern int mqtt_properties_get_int_at(IntPtr props, int id, UIntPtr index, out uint value);
        [DllImport(Lib)] internal static extern IntPtr mqtt_properties_get_string_len(IntPtr props, int id, out UIntPtr len);
        [DllImport(Lib)] internal static extern IntPtr mqtt_properties_get_binary(IntPtr props, int id, out UIntPtr len);
        [DllImport(Lib)] internal static extern UIntPtr mqtt_properties_count(IntPtr props, int id);
        [DllImport(Lib)] internal static extern int mqtt_properties_user_at(IntPtr props, UIntPtr index, out IntPtr key, out IntPtr value);
    }

    /// <summary>An array of C strings in unmanaged memory, for one call.</summary>
    internal sealed class CStringArray : IDisposable
    {
        internal readonly IntPtr[] Ptrs;

        internal CStringArray(System.Collections.Generic.IList<string> items)
        {
            Ptrs = new IntPtr[items.Count];
            try
            {
                for (int i = 0; i < Ptrs.Length; i++)
                {
                    if (items[i] == null) throw new ArgumentNullException("items", "null string at " + i);
                    var z = Utf8.Z(items[i]);
                    Ptrs[i] = Marshal.AllocHGlobal(z.Length);
                    Marshal.Copy(z, 0, Ptrs[i], z.Length);
                }
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public void Dispose()
        {
            for (int i = 0; i < Ptrs.Length; i++)
            {
                if (Ptrs[i] != IntPtr.Zero) Marshal.FreeHGlobal(Ptrs[i]);
                Ptrs[i] = IntPtr.Zero;
            }
        }
    }

    /// <summary>UTF-8 in and out of C strings.</summary>
    internal static class Utf8
    {
        /// <summary>NUL-terminated UTF-8 bytes of s; null stays null (C NULL).
        /// A string with a NUL character is refused before any C call (C would
        /// read it cut short): MqttException, ErrorCode.InvalidArgument.</summary>
        internal static byte[] Z(string s)
        {
            if (s == null) return null;
            if (s.IndexOf('\0') >= 0)
                throw new MqttException((int)ErrorCode.InvalidArgument, "invalid argument",
                    "string contains a NUL character: \"" + s.Replace("\0", "\\0") + "\"");
            var bytes = new byte[Encoding.UTF8.GetByteCount(s) + 1];
            Encoding.UTF8.GetBytes(s, 0, s.Length, bytes, 0);
            return bytes;
        }

        /// <summary>The NUL-terminated UTF-8 string at p; IntPtr.Zero gives null.</summary>
        internal static string From(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            int n = 0;
            while (Marshal.ReadByte(p, n) != 0) n++;
            return From(p, n);
        }

        internal static string From(IntPtr p, int len)
        {
            if (p == IntPtr.Zero) return null;
            return Encoding.UTF8.GetString(Bytes(p, len));
        }

        internal static byte[] Bytes(IntPtr p, int len)
        {
            var b = new byte[len];
            if (len > 0) Marshal.Copy(p, b, 0, len);
            return b;
        }
    }
}
