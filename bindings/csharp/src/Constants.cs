// The C constants this binding mirrors, by value (the C macro names may
// change; the values never do). tests/HeaderTests.cs parses
// include/mqtt5c.h and checks every member below against its #define: the
// C name is MQTT<anything>_ + the enum's prefix + the member in UPPER_SNAKE
// case (ErrorCode.QueueFull: MQTT5C_ERR_QUEUE_FULL).
using System;

namespace Mqtt5c
{
    /// <summary>The MQTT version to speak (prefix PROTOCOL_).</summary>
    public enum ProtocolVersion { Auto = 0, V311 = 4, V5 = 5 }

    /// <summary>Quality of service (MQTT5C_QOS0..2).</summary>
    public enum Qos { AtMostOnce = 0, AtLeastOnce = 1, ExactlyOnce = 2 }

    /// <summary>The library's negative return codes (prefix ERR_).</summary>
    public enum ErrorCode
    {
        InvalidArgument = -1,
        NotConnected = -2,
        ConnectionLost = -3,
        Timeout = -4,
        Io = -5,
        Protocol = -6,
        PacketTooLarge = -7,
        Internal = -8,
        NotFound = -9,
        Tls = -10,
        AlreadyConnected = -11,
        BadState = -12,
        QueueFull = -13,
        Expired = -14,
        Persistence = -15,
    }

    /// <summary>Connection events (prefix EVENT_).</summary>
    public enum ConnectionEvent
    {
        Connected = 1,
        Disconnected = 2,
        Reconnecting = 3,
        ResubscribeFailed = 4,
    }

    /// <summary>Subscription option flags, or-ed with the QoS (prefix SUB_).</summary>
    [Flags]
    public enum SubscribeFlags
    {
        None = 0,
        NoLocal = 4,
        RetainAsPublished = 8,
        RetainHandlingNewOnly = 16,
        RetainHandlingNone = 32,
    }

    /// <summary>What a full offline queue does (prefix QUEUE_).</summary>
    public enum QueuePolicy { FailNew = 0, DropOldest = 1 }

    /// <summary>Counters of Client.GetStat (prefix STAT_).</summary>
    public enum Stat
    {
        ReceiveMaximumExceeded = 1,
        InboundInflightPeak = 2,
        DeliveryQueuePeak = 3,
        Qos0Dropped = 4,
        Queued = 5,
        QueueDropped = 6,
        QueueExpired = 7,
        QueueLength = 8,
        ResubscribeFailed = 9,
        DeliveryQueuePeakBytes = 10,
    }

    /// <summary>Levels of the client's log lines, most severe first (prefix LOG_):
    /// Client.SetLogHandler(level, ...) gets that level and the more severe ones.</summary>
    public enum LogLevel
    {
        Error = 1,
        Warning = 2,
        Info = 3,
        Debug = 4,
    }

    /// <summary>MQTT v5 property identifiers (prefix PROP_).</summary>
    public enum PropertyId
    {
        PayloadFormatIndicator = 1,
        MessageExpiryInterval = 2,
        ContentType = 3,
        ResponseTopic = 8,
        CorrelationData = 9,
        SubscriptionIdentifier = 11,
        SessionExpiryInterval = 17,
        AssignedClientIdentifier = 18,
        ServerKeepAlive = 19,
        AuthenticationMethod = 21,
        AuthenticationData = 22,
        RequestProblemInformation = 23,
        WillDelayInterval = 24,
        RequestResponseInformation = 25,
        ResponseInformation = 26,
        ServerReference = 28,
        ReasonString = 31,
        ReceiveMaximum = 33,
        TopicAliasMaximum = 34,
        TopicAlias = 35,
        MaximumQos = 36,
        RetainAvailable = 37,
        UserProperty = 38,
        MaximumPacketSize = 39,
        WildcardSubscriptionAvailable = 40,
        SubscriptionIdentifierAvailable = 41,
        SharedSubscriptionAvailable = 42,
    }
}
