using System;

namespace Mqtt5c
{
    /// <summary>A received message, copied out of the library's message during
    /// the callback: it stays valid forever and may go to any thread.</summary>
    public sealed class Message
    {
        public string Topic { get; private set; }
        public byte[] Payload { get; private set; }
        public Qos Qos { get; private set; }
        public bool Retain { get; private set; }
        public bool Dup { get; private set; }
        public MqttProperties Properties { get; private set; }

        /// <summary>For Client.Ack with ClientOptions.ManualAck (0 for QoS 0).</summary>
        public ulong AckId { get; private set; }

        /// <summary>Copies the native message m (borrowed).</summary>
        internal static Message FromNative(IntPtr m)
        {
            UIntPtr len;
            IntPtr payload = Native.mqtt_message_payload(m, out len);
            return new Message
            {
                Topic = Utf8.From(Native.mqtt_message_topic(m)),
                Payload = Utf8.Bytes(payload, checked((int)(ulong)len)),
                Qos = (Qos)Native.mqtt_message_qos(m),
                Retain = Native.mqtt_message_retain(m),
                Dup = Native.mqtt_message_dup(m),
                Properties = MqttProperties.FromNative(Native.mqtt_message_properties(m)),
                AckId = Native.mqtt_message_ack_id(m),
            };
        }
    }
}
