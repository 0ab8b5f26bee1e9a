using System;

namespace Mqtt5c
{
    /// <summary>A failed call: a negative library error (ErrorCode) or a
    /// broker's reason code >= 0x80 (ReasonCode), with the library's detail
    /// text (mqtt_last_error(), read on the calling thread right after the
    /// call).</summary>
    public class MqttException : Exception
    {
        /// <summary>What the C function returned.</summary>
        public int ReturnCode { get; private set; }

        /// <summary>The library error when ReturnCode is negative, else null.</summary>
        public ErrorCode? Error { get { return ReturnCode < 0 ? (ErrorCode?)ReturnCode : null; } }

        /// <summary>The broker's reason code (0x80-0xFF) when ReturnCode is one, else null.</summary>
        public int? ReasonCode { get { return ReturnCode > 0 ? (int?)ReturnCode : null; } }

        /// <summary>mqtt_last_error() at the failure ("" when the library gave none).</summary>
        public string LastError { get; private set; }

        /// <summary>mqtt_strerror(ReturnCode).</summary>
        public string ErrorText { get; private set; }

        public MqttException(int returnCode, string errorText, string lastError)
            : base(Format(returnCode, errorText, lastError))
        {
            ReturnCode = returnCode;
            ErrorText = errorText;
            LastError = lastError ?? "";
        }

        static string Format(int rc, string text, string detail)
        {
            var s = string.Format("mqtt5c: {0} ({1})", text, rc < 0 ? rc.ToString() : "0x" + rc.ToString("X2"));
            return string.IsNullOrEmpty(detail) ? s : s + ": " + detail;
        }

        /// <summary>Success is 0x00-0x7F (a granted QoS, 0x10 no matching
        /// subscribers, 0x11 no subscription existed); failure is negative
        /// (library) or >= 0x80 (broker).</summary>
        public static bool IsSuccess(int rc) { return rc >= 0 && rc < 0x80; }

        /// <summary>Throws for a failing rc, reading mqtt_last_error() first:
        /// call it right after the native call, on the same thread.</summary>
        internal static int Check(int rc)
        {
            if (IsSuccess(rc)) return rc;
            throw FromCode(rc);
        }

        internal static MqttException FromCode(int rc)
        {
            string detail = Utf8.From(Native.mqtt_last_error());
            return new MqttException(rc, Utf8.From(Native.mqtt_strerror(rc)), detail);
        }

        /// <summary>For a call that returned NULL: the detail text only.</summary>
        internal static MqttException FromNull(string what)
        {
            string detail = Utf8.From(Native.mqtt_last_error());
            return new MqttException((int)Mqtt5c.ErrorCode.InvalidArgument, what + " failed", detail);
        }
    }
}
