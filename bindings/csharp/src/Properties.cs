using System;
using System.Collections.Generic;

namespace Mqtt5c
{
    /// <summary>MQTT v5 properties as plain managed data: built by the caller
    /// for publish, subscribe, will, connect and disconnect (converted to a
    /// native list for the call only), and read from received messages,
    /// acknowledgements and the CONNACK (copied out of the native list while
    /// it is valid). Typed accessors for the common properties; Set/Get by
    /// PropertyId for the rest.</summary>
    public sealed class MqttProperties
    {
        enum Kind { Int, Str, Bin }

        // What each identifier holds, for copying a native list out.
        static readonly Dictionary<PropertyId, Kind> Kinds = new Dictionary<PropertyId, Kind>
        {
            { PropertyId.PayloadFormatIndicator, Kind.Int },
            { PropertyId.MessageExpiryInterval, Kind.Int },
            { PropertyId.ContentType, Kind.Str },
            { PropertyId.ResponseTopic, Kind.Str },
            { PropertyId.CorrelationData, Kind.Bin },
            { PropertyId.SessionExpiryInterval, Kind.Int },
            { PropertyId.AssignedClientIdentifier, Kind.Str },
            { PropertyId.ServerKeepAlive, Kind.Int },
            { PropertyId.AuthenticationMethod, Kind.Str },
            { PropertyId.AuthenticationData, Kind.Bin },
            { PropertyId.RequestProblemInformation, Kind.Int },
            { PropertyId.WillDelayInterval, Kind.Int },
            { PropertyId.RequestResponseInformation, Kind.Int },
            { PropertyId.ResponseInformation, Kind.Str },
            { PropertyId.ServerReference, Kind.Str },
            { PropertyId.ReasonString, Kind.Str },
            { PropertyId.ReceiveMaximum, Kind.Int },
            { PropertyId.TopicAliasMaximum, Kind.Int },
            { PropertyId.TopicAlias, Kind.Int },
            { PropertyId.MaximumQos, Kind.Int },
            { PropertyId.RetainAvailable, Kind.Int },
            { PropertyId.MaximumPacketSize, Kind.Int },
            { PropertyId.WildcardSubscriptionAvailable, Kind.Int },
            { PropertyId.SubscriptionIdentifierAvailable, Kind.Int },
            { PropertyId.SharedSubscriptionAvailable, Kind.Int },
        };

        readonly Dictionary<PropertyId, object> values = new Dictionary<PropertyId, object>();

        /// <summary>User properties, in order; keys may repeat.</summary>
        public List<KeyValuePair<string, string>> UserProperties { get; private set; }

        /// <summary>Subscription Identifiers: one to set on a subscribe; on a
        /// received message, one per matching subscription.</summary>
        public List<uint> SubscriptionIdentifiers { get; private set; }

        public MqttProperties()
        {
            UserProperties = new List<KeyValuePair<string, string>>();
            SubscriptionIdentifiers = new List<uint>();
        }

        public MqttProperties AddUserProperty(string key, string value)
        {
            UserProperties.Add(new KeyValuePair<string, string>(key, value));
            return this;
        }

        public void SetInt(PropertyId id, uint value) { values[id] = value; }
        public void SetString(PropertyId id, string value) { values[id] = value; }
        public void SetBinary(PropertyId id, byte[] value) { values[id] = value; }
        public bool Remove(PropertyId id) { return values.Remove(id); }

        public uint? GetInt(PropertyId id)
        {
            object v;
            return values.TryGetValue(id, out v) && v is uint ? (uint?)(uint)v : null;
        }

        public string GetString(PropertyId id)
        {
            object v;
            return values.TryGetValue(id, out v) ? v as string : null;
        }

        public byte[] GetBinary(PropertyId id)
        {
            object v;
            return values.TryGetValue(id, out v) ? v as byte[] : null;
        }

        public string ContentType { get { return GetString(PropertyId.ContentType); } set { SetOrRemove(PropertyId.ContentType, value); } }
        public string ResponseTopic { get { return GetString(PropertyId.ResponseTopic); } set { SetOrRemove(PropertyId.ResponseTopic, value); } }
        public byte[] CorrelationData { get { return GetBinary(PropertyId.CorrelationData); } set { SetOrRemove(PropertyId.CorrelationData, value); } }
        public string ReasonString { get { return GetString(PropertyId.ReasonString); } set { SetOrRemove(PropertyId.ReasonString, value); } }
        public uint? MessageExpiryInterval { get { return GetInt(PropertyId.MessageExpiryInterval); } set { SetOrRemove(PropertyId.MessageExpiryInterval, value); } }
        public uint? PayloadFormatIndicator { get { return GetInt(PropertyId.PayloadFormatIndicator); } set { SetOrRemove(PropertyId.PayloadFormatIndicator, value); } }

        void SetOrRemove(PropertyId id, object value)
        {
            if (value == null) values.Remove(id); else values[id] = value;
        }

        /// <summary>Whether nothing is set.</summary>
        public bool IsEmpty { get { return values.Count == 0 && UserProperties.Count == 0 && SubscriptionIdentifiers.Count == 0; } }

        /// <summary>A new native list holding these properties; the caller
        /// frees it (Native.mqtt_properties_free). Throws MqttException for a
        /// value the library refuses (the text names the property).</summary>
        internal IntPtr ToNative()
        {
            IntPtr p = Native.mqtt_properties_new();
            if (p == IntPtr.Zero) throw MqttException.FromNull("mqtt_properties_new");
            try
            {
                foreach (var kv in values)
                {
                    int rc;
                    if (kv.Value is uint) rc = Native.mqtt_properties_set_int(p, (int)kv.Key, (uint)kv.Value);
                    else if (kv.Value is string) rc = Native.mqtt_properties_set_string(p, (int)kv.Key, Utf8.Z((string)kv.Value));
                    else
                    {
                        var b = (byte[])kv.Value;
                        rc = Native.mqtt_properties_set_binary(p, (int)kv.Key, b, (UIntPtr)b.Length);
                    }
                    MqttException.Check(rc);
                }
                foreach (var id in SubscriptionIdentifiers)
                    MqttException.Check(Native.mqtt_properties_set_int(p, (int)PropertyId.SubscriptionIdentifier, id));
                foreach (var kv in UserProperties)
                    MqttException.Check(Native.mqtt_properties_add_user(p, Utf8.Z(kv.Key), Utf8.Z(kv.Value)));
                return p;
            }
            catch
            {
                Native.mqtt_properties_free(p);
                throw;
            }
        }

        /// <summary>A managed copy of the native list p (borrowed; may be IntPtr.Zero: empty).</summary>
        internal static MqttProperties FromNative(IntPtr p)
        {
            var result = new MqttProperties();
            if (p == IntPtr.Zero) return result;
            foreach (var kv in Kinds)
            {
                int id = (int)kv.Key;
                if ((ulong)Native.mqtt_properties_count(p, id) == 0) continue;
                UIntPtr len;
                switch (kv.Value)
                {
                    case Kind.Int:
                        uint v;
                        if (Native.mqtt_properties_get_int_at(p, id, UIntPtr.Zero, out v) == 0) result.values[kv.Key] = v;
                        break;
                    case Kind.Str:
                        IntPtr s = Native.mqtt_properties_get_string_len(p, id, out len);
                        if (s != IntPtr.Zero) result.values[kv.Key] = Utf8.From(s, checked((int)(ulong)len));
                        break;
                    default:
                        IntPtr b = Native.mqtt_properties_get_binary(p, id, out len);
                        if (b != IntPtr.Zero) result.values[kv.Key] = Utf8.Bytes(b, checked((int)(ulong)len));
                        break;
                }
            }
            ulong subIds = (ulong)Native.mqtt_properties_count(p, (int)PropertyId.SubscriptionIdentifier);
            for (ulong i = 0; i < subIds; i++)
            {
                uint v;
                if (Native.mqtt_properties_get_int_at(p, (int)PropertyId.SubscriptionIdentifier, (UIntPtr)i, out v) == 0)
                    result.SubscriptionIdentifiers.Add(v);
            }
            ulong users = (ulong)Native.mqtt_properties_count(p, (int)PropertyId.UserProperty);
            for (ulong i = 0; i < users; i++)
            {
                IntPtr k, v;
                if (Native.mqtt_properties_user_at(p, (UIntPtr)i, out k, out v) == 0)
                    result.UserProperties.Add(new KeyValuePair<string, string>(Utf8.From(k), Utf8.From(v)));
            }
            return result;
        }
    }

    /// <summary>A native copy of optional properties for the length of one call.</summary>
    internal struct NativeProps : IDisposable
    {
        internal IntPtr Ptr;

        internal NativeProps(MqttProperties props)
        {
            Ptr = props == null ? IntPtr.Zero : props.ToNative();
        }

        public void Dispose()
        {
            if (Ptr != IntPtr.Zero) Native.mqtt_properties_free(Ptr);
            Ptr = IntPtr.Zero;
        }
    }
}
