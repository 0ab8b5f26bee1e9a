// mqtt5c_stats: the client's counters, read at once by Client.GetStats.
using System.Runtime.InteropServices;

namespace Mqtt5c
{
    /// <summary>All of a client's counters (mqtt5c_stats, field for field; the
    /// header documents each), cumulative over its connections except the "now"
    /// ones (the in-flight counts and queue lengths). The four by-QoS arrays are
    /// indexed by QoS: MessagesSent[1] is the QoS 1 messages sent. Each counter
    /// is exact; together they are not one instant's snapshot. Size is the
    /// bytes the library filled: an older library leaves the fields it does
    /// not know 0. The layout is the C struct's (every field a uint64_t, new
    /// ones only appended), and GetStats passes its size, so a newer library
    /// fills only what this struct has room for.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Stats
    {
        public ulong Size;
        [MarshalAs(UnmanagedType.ByValArray, SizeConst = 3)] public ulong[] MessagesSent;
        [MarshalAs(UnmanagedType.ByValArray, SizeConst = 3)] public ulong[] PayloadBytesSent;
        [MarshalAs(UnmanagedType.ByValArray, SizeConst = 3)] public ulong[] MessagesReceived;
        [MarshalAs(UnmanagedType.ByValArray, SizeConst = 3)] public ulong[] PayloadBytesReceived;
        public ulong Reconnects;
        public ulong ReconnectAttempts;
        public ulong OutboundInFlight;
        public ulong InboundInFlight;
        public ulong OfflineQueueLength;
        public ulong Queued;
        public ulong QueueDropped;
        public ulong QueueExpired;
        public ulong Qos0Dropped;
        public ulong DeliveryQueueLength;
        public ulong DeliveryQueuePeak;
        public ulong DeliveryQueuePeakBytes;
        public ulong ReceiveMaximumExceeded;
        public ulong InboundInflightPeak;
        public ulong ResubscribeFailed;
        public ulong Writes;
        public ulong LogDropped;
    }
}
